#include "aggregator/update_sum.h"

#include <catch2/catch.hpp>
#include <set>

using namespace sotto;
using namespace sotto::aggregator;
using namespace std::chrono_literals;

namespace {

// Records the order of the updates it is given (each update's num_examples names its sender).
class RecordingStrategy final : public Strategy {
 public:
  std::string name() const override { return "recording"; }
  void begin_round(const model::ModelParameters&) override { ++rounds; }
  void accumulate(model::ModelParameters, std::uint64_t num_examples) override { order.push_back(num_examples); }
  model::ModelParameters finish_round(const model::ModelParameters& global) override {
    finished = true;
    return global;
  }
  std::vector<std::uint64_t> order;
  int rounds = 0;
  bool finished = false;
};


const std::vector<std::pair<ConnectionId, std::string>> kCohort = {{1, "c"}, {2, "a"}, {3, "b"}};

}  // namespace

TEST_CASE("UpdateSum adds updates in client-id order whatever order they arrive in", "[update_sum]") {
  RecordingStrategy strategy;
  UpdateSum sum(strategy, true, nullptr);
  sum.begin({}, kCohort);
  CHECK(strategy.rounds == 1);
  std::set<ConnectionId> expected = {1, 2, 3};
  auto still = [&](ConnectionId conn) { return expected.count(conn) > 0; };
  sum.add("c", {}, 3);  // c waits for a and b
  expected.erase(1);
  sum.settle(still);
  CHECK(strategy.order.empty());
  CHECK(sum.held() == 1);
  sum.add("a", {}, 1);
  expected.erase(2);
  sum.settle(still);
  CHECK(strategy.order == std::vector<std::uint64_t>{1});  // a is first; c still waits for b
  expected.erase(3);  // b leaves without an update
  sum.settle(still);
  CHECK(strategy.order == std::vector<std::uint64_t>{1, 3});
  CHECK(sum.held() == 0);
  sum.finish({});
  CHECK(strategy.finished);
}

TEST_CASE("UpdateSum in arrival order adds at once and finish adds what is held in id order", "[update_sum]") {
  RecordingStrategy strategy;
  UpdateSum arrival(strategy, false, nullptr);
  arrival.begin({}, kCohort);
  arrival.add("c", {}, 3);
  arrival.add("a", {}, 1);
  CHECK(strategy.order == std::vector<std::uint64_t>{3, 1});

  RecordingStrategy ordered_strategy;
  UpdateSum ordered(ordered_strategy, true, nullptr);
  ordered.begin({}, kCohort);
  ordered.add("c", {}, 3);
  ordered.add("b", {}, 2);
  ordered.finish({});  // "a" never came and the round closed anyway: b then c
  CHECK(ordered_strategy.order == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("UpdateSum times the strategy by its injected stopwatch only", "[update_sum]") {
  RecordingStrategy strategy;
  TimePoint fake{};
  UpdateSum sum(strategy, false, [&] {
    fake += 250ms;  // every reading advances a quarter second
    return fake;
  });
  sum.begin({}, kCohort);
  sum.add("a", {}, 1);
  sum.add_mean({});
  CHECK(sum.seconds() == Approx(0.5));
  sum.begin({}, kCohort);
  CHECK(sum.seconds() == 0);

  UpdateSum untimed(strategy, false, nullptr);
  untimed.begin({}, kCohort);
  untimed.add("a", {}, 1);
  CHECK(untimed.seconds() == 0);
}
