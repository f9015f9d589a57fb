#include "aggregator/round_coordinator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <limits>
#include <set>

#include "aggregator/fedavg.h"
#include "tests/support/coordinator_actions.h"

using namespace sotto;
using namespace sotto::aggregator;
using namespace std::chrono_literals;

namespace {

model::ModelParameters weights(std::vector<float> w) {
  model::Tensor t{"w", model::DType::kFloat32, {static_cast<std::int64_t>(w.size())}, std::vector<std::byte>(w.size() * 4)};
  std::memcpy(t.data.data(), w.data(), t.data.size());
  return model::ModelParameters({t});
}

std::vector<float> values(const model::ModelParameters& p) {
  auto s = p.find("w")->as<float>();
  return {s.begin(), s.end()};
}

ClientUpdate update(std::uint64_t round, std::vector<float> delta, std::uint64_t examples = 10) {
  ClientUpdate u;
  u.round_id = round;
  u.num_examples = examples;
  u.train_loss = 1.0;
  u.delta = weights(std::move(delta));
  return u;
}

template <typename A>
std::vector<A> all(const Actions& actions) {
  return test::all_of<A>(actions);
}

template <typename A>
A only(const Actions& actions) {
  auto v = all<A>(actions);
  REQUIRE(v.size() == 1);
  return v.front();
}

struct Fixture {
  TimePoint t0 = TimePoint{} + 1000s;
  CoordinatorOptions options;
  std::unique_ptr<RoundCoordinator> c;

  Fixture(std::uint32_t target = 3, std::uint32_t min = 2, std::uint64_t rounds = 3) {
    options.total_rounds = rounds;
    options.cohort_target = target;
    options.cohort_min = min;
    options.checkin_window = 10s;
    options.training_deadline = 60s;
    c = std::make_unique<RoundCoordinator>(options, CoordinatorStart{weights({0, 0}), 1, 0, {}},
                                           std::make_unique<FedAvg>());
    REQUIRE(c->start(t0).empty());
  }

  // Admits clients 1..n ("c1".."cn") on connections 1..n; returns the actions of the last hello.
  Actions admit(int n) {
    Actions last;
    for (int i = 1; i <= n; ++i) last = c->on_hello(i, "c" + std::to_string(i), t0);
    return last;
  }
};

}  // namespace

TEST_CASE("coordinator: admits up to the target cohort, then sends the same task and model to all of it") {
  Fixture f;
  auto a1 = f.c->on_hello(1, "c1", f.t0);
  CHECK(only<action::Admit>(a1).round_id == 1);
  CHECK(all<action::SendTask>(a1).empty());
  f.c->on_hello(2, "c2", f.t0);
  auto a3 = f.c->on_hello(3, "c3", f.t0);
  auto task = only<action::SendTask>(a3);
  CHECK(task.conns == std::vector<ConnectionId>{1, 2, 3});
  CHECK(task.round_id == 1);
  CHECK(values(*task.model) == std::vector<float>{0, 0});
  CHECK(f.c->phase() == RoundCoordinator::Phase::kTraining);
}

TEST_CASE("coordinator: a round completes when every client uploaded, with the example-weighted mean") {
  Fixture f;
  f.admit(3);
  CHECK(f.c->on_update(1, update(1, {1, 1}, 10), f.t0 + 1s).empty());
  CHECK(f.c->on_update(2, update(1, {2, 2}, 10), f.t0 + 2s).empty());
  auto done = f.c->on_update(3, update(1, {6, -4}, 20), f.t0 + 3s);
  auto closed = only<action::RoundClosed>(done);
  CHECK(closed.report.completed);
  CHECK(closed.report.survivors == 3);
  CHECK(closed.report.examples == 40);
  CHECK(closed.completed_rounds == 1);
  CHECK(closed.next_round_id == 2);
  CHECK(values(*closed.global_model) == std::vector<float>{3.75f, -1.25f});
  CHECK(all<action::SendRoundResult>(done).size() == 3);
  for (const auto& r : all<action::SendRoundResult>(done)) {
    CHECK(r.completed);
    CHECK_FALSE(r.training_finished);
  }
  CHECK(f.c->phase() == RoundCoordinator::Phase::kRecording);
  CHECK(f.c->round_id() == 2);
  CHECK_FALSE(f.c->next_deadline().has_value());
  CHECK(f.c->on_round_recorded(f.t0 + 4s).empty());
  CHECK(f.c->phase() == RoundCoordinator::Phase::kCheckIn);
}

namespace {

// A one-round FedAvg coordinator of a one-weight model whose n clients "c1".."cn" (connections 1..n) have all
// checked in at t0: it is training.
std::unique_ptr<RoundCoordinator> one_round_training(int n, bool reproducible, TimePoint t0) {
  CoordinatorOptions o;
  o.total_rounds = 1;
  o.cohort_target = static_cast<std::uint32_t>(n);
  o.reproducible_aggregation = reproducible;
  auto c = std::make_unique<RoundCoordinator>(o, CoordinatorStart{weights({0}), 1, 0, {}}, std::make_unique<FedAvg>());
  c->start(t0);
  for (int i = 1; i <= n; ++i) c->on_hello(i, "c" + std::to_string(i), t0);
  return c;
}

}  // namespace

TEST_CASE("coordinator: reproducible aggregation gives the same model whatever order updates arrive in") {
  // 1e16 + 1 - 1e16 in double is 0 or 1 depending on the order of the additions.
  const std::vector<std::vector<float>> deltas = {{1e16f}, {1.0f}, {-1e16f}};
  auto run = [&](bool reproducible, std::vector<int> arrival) {
    const TimePoint t0 = TimePoint{} + 1000s;
    auto c = one_round_training(3, reproducible, t0);
    Actions last;
    for (int i : arrival) last = c->on_update(i, update(1, deltas[i - 1], 10), t0 + 1s);
    return values(*only<action::RoundClosed>(last).global_model);
  };
  CHECK(run(true, {1, 2, 3}) == run(true, {3, 1, 2}));
  CHECK(run(true, {2, 3, 1}) == run(true, {1, 2, 3}));
  // Without it the sum follows arrival order, and these two orders differ.
  CHECK(run(false, {1, 2, 3}) != run(false, {1, 3, 2}));
}

TEST_CASE("coordinator: reproducible aggregation sums in id order as soon as it can, whoever drops when") {
  // Client 4 leaves without an update at every point of every arrival order of the other three; the model is
  // always that of the id-ordered sum of clients 1-3, and an update is held only while a smaller id may still
  // send one.
  const std::vector<std::vector<float>> deltas = {{1e16f}, {1.0f}, {-1e16f}, {5.0f}};
  auto run = [&](const std::vector<int>& events) {
    const TimePoint t0 = TimePoint{} + 1000s;
    auto c_owner = one_round_training(4, true, t0);
    RoundCoordinator& c = *c_owner;
    Actions last;
    std::set<int> done;
    for (int e : events) {
      last = e > 0 ? c.on_update(e, update(1, deltas[e - 1], 10), t0 + 1s) : c.on_disconnect(-e, "gone", t0 + 1s);
      done.insert(std::abs(e));
      std::size_t summable = 0;  // the prefix of ids 1, 2, ... that has reported
      while (done.count(static_cast<int>(summable) + 1)) ++summable;
      if (c.phase() == RoundCoordinator::Phase::kTraining) {
        std::size_t waiting = 0;  // reported updates above the summable prefix
        for (int d : done) waiting += d > static_cast<int>(summable) && d != 4 ? 1 : 0;
        CHECK(c.updates_held() == waiting);
      }
    }
    auto closed = only<action::RoundClosed>(last);
    CHECK(closed.report.survivors == 3);
    return values(*closed.global_model);
  };
  const std::vector<float> in_id_order = run({1, 2, 3, -4});
  std::vector<int> events = {-4, 1, 2, 3};
  int orders = 0;
  do {
    CAPTURE(events);
    CHECK(run(events) == in_id_order);
    ++orders;
  } while (std::next_permutation(events.begin(), events.end()));
  CHECK(orders == 24);
}

TEST_CASE("coordinator: the next round waits until the caller has recorded the last one") {
  Fixture f(1, 1);
  f.c->on_hello(1, "c1", f.t0);
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  auto a = f.c->on_hello(2, "c2", f.t0);  // while the round is being recorded
  CHECK(only<action::Admit>(a).round_id == 2);
  CHECK(all<action::SendTask>(a).empty());
  auto next = f.c->on_round_recorded(f.t0 + 1s);
  auto task = only<action::SendTask>(next);
  CHECK(task.round_id == 2);
  CHECK(task.conns == std::vector<ConnectionId>{2});
}

TEST_CASE("coordinator: clients arriving during training are admitted to the next round and get its task") {
  Fixture f(2, 2);
  f.admit(2);
  CHECK(only<action::Admit>(f.c->on_hello(7, "late1", f.t0)).round_id == 2);
  CHECK(only<action::Admit>(f.c->on_hello(8, "late2", f.t0)).round_id == 2);
  auto full = f.c->on_hello(9, "late3", f.t0);  // the waiting room holds one cohort
  CHECK(only<action::RetryLater>(full).conn == 9);
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  f.c->on_update(2, update(1, {1, 1}), f.t0);
  auto next = f.c->on_round_recorded(f.t0);
  CHECK(all<action::Admit>(next).empty());
  auto task = only<action::SendTask>(next);
  CHECK(task.round_id == 2);
  CHECK(task.conns == std::vector<ConnectionId>{7, 8});
}

TEST_CASE("coordinator: a waiting client that leaves before its round is forgotten") {
  Fixture f(2, 2);
  f.admit(2);
  f.c->on_hello(7, "late1", f.t0);
  CHECK(f.c->on_disconnect(7, "gone", f.t0).empty());
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  f.c->on_update(2, update(1, {1, 1}), f.t0);
  auto next = f.c->on_round_recorded(f.t0);
  CHECK(all<action::SendTask>(next).empty());
  CHECK(f.c->phase() == RoundCoordinator::Phase::kCheckIn);
}

TEST_CASE("coordinator: the check-in window starts a smaller round once cohort_min is reached") {
  Fixture f(3, 2);
  f.c->on_hello(1, "c1", f.t0);
  CHECK(f.c->on_tick(f.t0 + 11s).empty());  // one client: below the minimum, keep waiting
  CHECK(f.c->phase() == RoundCoordinator::Phase::kCheckIn);
  f.c->on_hello(2, "c2", f.t0 + 12s);
  auto started = f.c->on_tick(*f.c->next_deadline());
  CHECK(only<action::SendTask>(started).conns == std::vector<ConnectionId>{1, 2});
}

TEST_CASE("coordinator: a client leaving during check-in is forgotten, not counted as a dropout") {
  Fixture f(3, 2);
  f.c->on_hello(1, "c1", f.t0);
  f.c->on_hello(2, "c2", f.t0);
  CHECK(f.c->on_disconnect(1, "closed", f.t0).empty());
  auto a = f.c->on_hello(3, "c3", f.t0);
  CHECK(all<action::SendTask>(a).empty());  // only two admitted now
  auto started = f.c->on_tick(f.t0 + 10s);
  auto task = only<action::SendTask>(started);
  CHECK(task.conns == std::vector<ConnectionId>{2, 3});
}

TEST_CASE("coordinator: a dropout after the task does not stop the round while cohort_min survive") {
  Fixture f(3, 2);
  f.admit(3);
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  CHECK(f.c->on_disconnect(2, "connection reset", f.t0).empty());
  auto done = f.c->on_update(3, update(1, {3, 3}), f.t0);
  auto closed = only<action::RoundClosed>(done);
  CHECK(closed.report.completed);
  CHECK(closed.report.survivors == 2);
  REQUIRE(closed.report.dropped.size() == 1);
  CHECK(closed.report.dropped[0].first == "c2");
  CHECK(values(*closed.global_model) == std::vector<float>{2, 2});
}

TEST_CASE("coordinator: a client that leaves after uploading still counts") {
  Fixture f(3, 3);
  f.admit(3);
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  CHECK(f.c->on_disconnect(1, "closed", f.t0).empty());
  f.c->on_update(2, update(1, {1, 1}), f.t0);
  auto done = f.c->on_update(3, update(1, {1, 1}), f.t0);
  auto closed = only<action::RoundClosed>(done);
  CHECK(closed.report.completed);
  CHECK(closed.report.survivors == 3);
  CHECK(all<action::SendRoundResult>(done).size() == 2);  // the one that left gets nothing
}

TEST_CASE("coordinator: below cohort_min the round is abandoned at once and the model is unchanged") {
  Fixture f(3, 3);
  f.admit(3);
  f.c->on_update(1, update(1, {5, 5}), f.t0);
  auto abandoned = f.c->on_disconnect(2, "killed", f.t0 + 1s);
  auto closed = only<action::RoundClosed>(abandoned);
  CHECK_FALSE(closed.report.completed);
  CHECK_THAT(closed.report.abandon_reason, Catch::Contains("fewer than cohort_min"));
  CHECK(values(*closed.global_model) == std::vector<float>{0, 0});
  CHECK(closed.completed_rounds == 0);
  CHECK(closed.next_round_id == 2);
  auto results = all<action::SendRoundResult>(abandoned);
  REQUIRE(results.size() == 2);  // the uploader and the one still training
  for (const auto& r : results) CHECK_FALSE(r.completed);
  CHECK(f.c->round_id() == 2);
  CHECK(f.c->phase() == RoundCoordinator::Phase::kRecording);
}

TEST_CASE("coordinator: at the training deadline late clients are rejected and the round closes without them") {
  Fixture f(3, 2);
  f.admit(3);
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  f.c->on_update(2, update(1, {3, 3}), f.t0);
  CHECK(f.c->on_tick(f.t0 + 59s).empty());
  auto late = f.c->on_tick(f.t0 + 60s);
  auto reject = only<action::Reject>(late);
  CHECK(reject.conn == 3);
  CHECK(reject.code == v1::ERROR_CODE_DEADLINE_EXCEEDED);
  auto closed = only<action::RoundClosed>(late);
  CHECK(closed.report.completed);
  CHECK(values(*closed.global_model) == std::vector<float>{2, 2});
}

TEST_CASE("coordinator: the deadline abandons the round when too few uploaded") {
  Fixture f(3, 2);
  f.admit(3);
  f.c->on_update(1, update(1, {1, 1}), f.t0);
  auto late = f.c->on_tick(f.t0 + 60s);
  CHECK(all<action::Reject>(late).size() == 2);
  CHECK_FALSE(only<action::RoundClosed>(late).report.completed);
}

TEST_CASE("coordinator: invalid updates are rejected and their senders dropped") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* name;
    ClientUpdate u;
    v1::ErrorCode code;
    const char* says;
  };
  std::vector<Case> cases;
  cases.push_back({"NaN", update(1, {nan, 1}), v1::ERROR_CODE_INVALID_UPDATE, "NaN"});
  cases.push_back({"Inf", update(1, {1, -inf}), v1::ERROR_CODE_INVALID_UPDATE, "Inf"});
  cases.push_back({"wrong shape", update(1, {1, 1, 1}), v1::ERROR_CODE_INVALID_UPDATE, "shape [3], expected [2]"});
  cases.push_back({"no examples", update(1, {1, 1}, 0), v1::ERROR_CODE_INVALID_UPDATE, "0 training examples"});
  cases.push_back({"wrong round", update(7, {1, 1}), v1::ERROR_CODE_WRONG_ROUND, "round 7"});
  ClientUpdate bad_loss = update(1, {1, 1});
  bad_loss.train_loss = nan;
  cases.push_back({"NaN loss", bad_loss, v1::ERROR_CODE_INVALID_UPDATE, "train_loss"});
  for (auto& k : cases) {
    SECTION(k.name) {
      Fixture f(3, 2);
      f.admit(3);
      auto a = f.c->on_update(1, k.u, f.t0);
      auto reject = only<action::Reject>(a);
      CHECK(reject.conn == 1);
      CHECK(reject.code == k.code);
      CHECK_THAT(reject.message, Catch::Contains(k.says));
      f.c->on_update(2, update(1, {2, 2}), f.t0);
      auto done = f.c->on_update(3, update(1, {4, 4}), f.t0);
      auto closed = only<action::RoundClosed>(done);
      CHECK(closed.report.survivors == 2);
      CHECK(values(*closed.global_model) == std::vector<float>{3, 3});
    }
  }
}

TEST_CASE("coordinator: duplicate and out-of-order messages are rejected") {
  Fixture f(3, 2);
  f.c->on_hello(1, "c1", f.t0);
  SECTION("the same client id twice") {
    auto a = f.c->on_hello(2, "c1", f.t0);
    CHECK(only<action::Reject>(a).code == v1::ERROR_CODE_DUPLICATE_CLIENT);
  }
  SECTION("an update before any task") {
    auto a = f.c->on_update(1, update(1, {1, 1}), f.t0);
    CHECK(only<action::Reject>(a).code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);
  }
  SECTION("an update from a connection that never said hello") {
    f.admit(3);
    auto a = f.c->on_update(42, update(1, {1, 1}), f.t0);
    CHECK(only<action::Reject>(a).code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);
  }
  SECTION("a second update in one round; the first one stands") {
    f.c->on_hello(2, "c2", f.t0);
    f.c->on_hello(3, "c3", f.t0);
    f.c->on_update(1, update(1, {3, 3}), f.t0);
    auto a = f.c->on_update(1, update(1, {100, 100}), f.t0);
    CHECK(only<action::Reject>(a).code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);
    f.c->on_update(2, update(1, {3, 3}), f.t0);
    auto done = f.c->on_update(3, update(1, {3, 3}), f.t0);
    CHECK(values(*only<action::RoundClosed>(done).global_model) == std::vector<float>{3, 3});
  }
}

TEST_CASE("coordinator: after the last round clients are told training is finished") {
  Fixture f(1, 1, 2);
  f.c->on_hello(1, "c1", f.t0);
  auto r1 = f.c->on_update(1, update(1, {1, 1}), f.t0);
  CHECK_FALSE(only<action::SendRoundResult>(r1).training_finished);
  f.c->on_round_recorded(f.t0);
  f.c->on_hello(2, "c1", f.t0);
  auto r2 = f.c->on_update(2, update(2, {1, 1}), f.t0);
  CHECK(only<action::SendRoundResult>(r2).training_finished);
  CHECK(f.c->finished());
  CHECK(only<action::RoundClosed>(r2).completed_rounds == 2);
  auto late = f.c->on_hello(3, "c9", f.t0);
  CHECK(only<action::SendFinished>(late).rounds_completed == 2);
  CHECK_FALSE(f.c->next_deadline().has_value());
}

TEST_CASE("coordinator: resumes at the checkpointed round with the checkpointed model") {
  CoordinatorOptions options;
  options.total_rounds = 4;
  options.cohort_target = 1;
  options.cohort_min = 1;
  RoundCoordinator c(options, CoordinatorStart{weights({7, 8}), 3, 2, {}}, std::make_unique<FedAvg>());
  const TimePoint t0{};
  c.start(t0);
  auto a = c.on_hello(1, "c1", t0);
  CHECK(only<action::Admit>(a).round_id == 3);
  CHECK(values(*only<action::SendTask>(a).model) == std::vector<float>{7, 8});
  SECTION("and a checkpoint that is already complete means there is nothing left to do") {
    RoundCoordinator done(options, CoordinatorStart{weights({7, 8}), 5, 4, {}}, std::make_unique<FedAvg>());
    done.start(t0);
    CHECK(done.finished());
  }
}

TEST_CASE("coordinator: abandoned rounds use up round ids but not the round budget") {
  Fixture f(2, 2, 1);
  f.admit(2);
  f.c->on_disconnect(1, "gone", f.t0);
  CHECK(f.c->round_id() == 2);
  CHECK(f.c->completed_rounds() == 0);
  CHECK_FALSE(f.c->finished());
}

TEST_CASE("coordinator: rejects a cohort_min outside 1..cohort_target") {
  CoordinatorOptions options;
  options.cohort_target = 2;
  options.cohort_min = 3;
  CHECK_THROWS_WITH(RoundCoordinator(options, CoordinatorStart{weights({0}), 1, 0, {}}, std::make_unique<FedAvg>()),
                    Catch::Contains("cohort_min"));
}

TEST_CASE("coordinator: reads no clock and reports aggregation time by the stopwatch it is given") {
  Fixture f;
  TimePoint fake{};
  int readings = 0;
  f.options.stopwatch = [&] {
    ++readings;
    fake += 100ms;
    return fake;
  };
  f.c = std::make_unique<RoundCoordinator>(f.options, CoordinatorStart{weights({0, 0}), 1, 0, {}},
                                           std::make_unique<FedAvg>());
  REQUIRE(f.c->start(f.t0).empty());
  f.admit(3);
  f.c->on_update(1, update(1, {1, 1}), f.t0 + 1s);
  f.c->on_update(2, update(1, {1, 1}), f.t0 + 2s);
  auto closed = only<action::RoundClosed>(f.c->on_update(3, update(1, {1, 1}), f.t0 + 3s));
  // Three additions and the strategy's finish, each timed by two readings 100 ms apart.
  CHECK(readings == 8);
  CHECK(closed.report.aggregation_seconds == Approx(0.4));
  CHECK(closed.report.training_seconds == Approx(3.0));  // from the times passed in, not a clock
}

TEST_CASE("coordinator: a self-reported example count above max_examples_per_client counts as the cap") {
  Fixture f(2, 2, 1);
  f.options.max_examples_per_client = 100;
  f.c = std::make_unique<RoundCoordinator>(f.options, CoordinatorStart{weights({0, 0}), 1, 0, {}},
                                           std::make_unique<FedAvg>());
  REQUIRE(f.c->start(f.t0).empty());
  f.admit(2);
  f.c->on_update(1, update(1, {1, 1}, 100), f.t0 + 1s);
  auto closed = only<action::RoundClosed>(
      f.c->on_update(2, update(1, {101, 101}, std::numeric_limits<std::uint64_t>::max()), f.t0 + 2s));
  CHECK(values(*closed.global_model) == std::vector<float>{51, 51});  // equal weights, not the attacker's delta
  CHECK(closed.report.examples == 200);
  CHECK(closed.report.examples_capped == std::vector<std::string>{"c2"});
}

TEST_CASE("coordinator: uniform weighting averages clients equally whatever their example counts") {
  Fixture f(2, 2, 1);
  f.options.weighting = Weighting::kUniform;
  f.c = std::make_unique<RoundCoordinator>(f.options, CoordinatorStart{weights({0, 0}), 1, 0, {}},
                                           std::make_unique<FedAvg>());
  REQUIRE(f.c->start(f.t0).empty());
  f.admit(2);
  f.c->on_update(1, update(1, {2, 0}, 10), f.t0 + 1s);
  auto closed = only<action::RoundClosed>(f.c->on_update(2, update(1, {0, 4}, 1000), f.t0 + 2s));
  CHECK(values(*closed.global_model) == std::vector<float>{1, 2});
  CHECK(closed.report.examples == 1010);  // the metrics still count examples
}

TEST_CASE("coordinator: in plain rounds it clips each update to clip_norm and names the clients it clipped") {
  Fixture f(2, 2, 1);
  f.options.clip_norm = 1.0;
  f.c = std::make_unique<RoundCoordinator>(f.options, CoordinatorStart{weights({0, 0}), 1, 0, {}},
                                           std::make_unique<FedAvg>());
  REQUIRE(f.c->start(f.t0).empty());
  auto task = only<action::SendTask>(f.admit(2));
  CHECK(task.plan.clip_norm == 1.0);  // the clients are told to clip too
  f.c->on_update(1, update(1, {0.6f, 0}), f.t0 + 1s);          // within the bound: untouched
  auto closed = only<action::RoundClosed>(f.c->on_update(2, update(1, {300, 400}), f.t0 + 2s));  // norm 500
  const auto v = values(*closed.global_model);
  CHECK(v[0] == Approx((0.6 + 0.6) / 2));
  CHECK(v[1] == Approx((0 + 0.8) / 2));
  CHECK(closed.report.clipped == std::vector<std::string>{"c2"});
}
