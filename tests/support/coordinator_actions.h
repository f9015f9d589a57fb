// Reading a RoundCoordinator's actions in tests: every action of one kind, in order.
#pragma once

#include <variant>
#include <vector>

#include "aggregator/round_actions.h"

namespace sotto::test {

template <typename A>
std::vector<A> all_of(const aggregator::Actions& actions) {
  std::vector<A> out;
  for (const auto& a : actions) {
    if (auto* x = std::get_if<A>(&a)) out.push_back(*x);
  }
  return out;
}

}  // namespace sotto::test
