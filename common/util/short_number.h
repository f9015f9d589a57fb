// A number in at most four significant digits ("%.4g"), for messages that quote an epsilon, a noise or a norm.
#pragma once

#include <cstdio>
#include <string>

namespace sotto::util {

inline std::string short_number(double v, int digits = 4) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, v);
  return buffer;
}

// v in at least four significant digits, and in as many more (up to 17) as it takes to tell it from `other` when
// they differ: "8.000002 over 8", not "8 over 8".
inline std::string short_number_apart(double v, double other) {
  int digits = 4;
  while (digits < 17 && v != other && short_number(v, digits) == short_number(other, digits)) ++digits;
  return short_number(v, digits);
}

}  // namespace sotto::util
