// Error: the one exception type Sotto's libraries throw for bad input or a failed operation.
//
// Its message always says what was wrong and, where it helps, what to do about it. Protocol state machines do
// not throw for peer misbehaviour: they turn it into actions (an error frame, a dropped client); exceptions are
// for input that the caller handed over (a file, a config, a tensor) and cannot be used.
#pragma once

#include <stdexcept>
#include <string>

namespace sotto {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace sotto
