#include "aggregator/update_sum.h"

#include <algorithm>

namespace sotto::aggregator {

UpdateSum::UpdateSum(Strategy& strategy, bool in_id_order, Stopwatch stopwatch)
    : strategy_(strategy), in_id_order_(in_id_order), stopwatch_(std::move(stopwatch)) {}

template <typename Work>
void UpdateSum::timed(Work&& work) {
  timed_by(stopwatch_, seconds_, std::forward<Work>(work));
}

void UpdateSum::begin(const model::ModelParameters& global,
                      std::vector<std::pair<ConnectionId, std::string>> cohort) {
  clear();
  seconds_ = 0;
  strategy_.begin_round(global);
  if (!in_id_order_) return;
  for (auto& [conn, client_id] : cohort) order_.emplace_back(std::move(client_id), conn);
  std::sort(order_.begin(), order_.end());
}

void UpdateSum::add(const std::string& client_id, model::ModelParameters delta, std::uint64_t weight) {
  if (in_id_order_) {
    held_.emplace(client_id, std::make_pair(std::move(delta), weight));  // added in turn by settle()
  } else {
    timed([&] { strategy_.accumulate(std::move(delta), weight); });
  }
}

void UpdateSum::settle(const StillExpected& still_expected) {
  if (cursor_ == order_.size()) return;  // in arrival order, or all added
  timed([&] {
    while (cursor_ < order_.size()) {
      const auto& [client_id, conn] = order_[cursor_];
      if (auto held = held_.find(client_id); held != held_.end()) {
        strategy_.accumulate(std::move(held->second.first), held->second.second);
        held_.erase(held);
      } else if (still_expected(conn)) {
        break;  // its update may still come
      }
      ++cursor_;  // added, or left without an update
    }
  });
}

void UpdateSum::add_mean(model::ModelParameters mean) {
  timed([&] { strategy_.accumulate_sole(std::move(mean), 1); });
}

model::ModelParameters UpdateSum::finish(const model::ModelParameters& global) {
  model::ModelParameters next;
  timed([&] {
    // What is still held comes after every id settle() added: adding it in id order completes the order.
    for (auto& [client_id, held] : held_) strategy_.accumulate(std::move(held.first), held.second);
    held_.clear();
    next = strategy_.finish_round(global);
  });
  return next;
}

void UpdateSum::clear() {
  order_.clear();
  cursor_ = 0;
  held_.clear();
}

}  // namespace sotto::aggregator
