// A number in at most four significant digits ("%.4g"), for messages that quote an epsilon, a noise or a norm.
#pragma once

#include <cstdio>
#include <string>

namespace sotto::util {

inline std::string short_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

}  // namespace sotto::util
