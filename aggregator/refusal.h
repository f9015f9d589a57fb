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

}  // namespace sotto::aggregator
