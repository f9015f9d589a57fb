// Refusal: why the aggregator refused a client's message — the error frame's code and text. The coordinator's
// pieces return one instead of throwing when a peer misbehaves.
#pragma once

#include <string>

#include "sotto/v1/sotto.pb.h"

namespace sotto::aggregator {

struct Refusal {
  v1::ErrorCode code = v1::ERROR_CODE_UNSPECIFIED;
  std::string message;
};

// An error code as a short label, for metrics: ERROR_CODE_DEADLINE_EXCEEDED -> "deadline_exceeded".
inline std::string error_code_label(v1::ErrorCode code) {
  std::string name = v1::ErrorCode_Name(code);
  if (name.rfind("ERROR_CODE_", 0) == 0) name.erase(0, 11);
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return name.empty() ? "unknown" : name;
}

}  // namespace sotto::aggregator
