// Tests for the server optimizers (FedAdagrad, FedAdam, FedYogi; Reddi et al. 2021, Algorithm 2) against
// hand-computed updates over two rounds, and for the strategy factory.
#include "aggregator/server_optimizer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "aggregator/fedavg.h"
#include "aggregator/strategy_factory.h"
#include "common/util/error.h"

using namespace sotto;
using namespace sotto::aggregator;

namespace {

template <typename T>
model::Tensor tensor(const std::string& name, model::DType dtype, std::vector<T> values) {
  model::Tensor t{
      name, dtype, {static_cast<std::int64_t>(values.size())}, std::vector<std::byte>(values.size() * sizeof(T))};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

// "w": float64 [3], "b": float32 [1], "steps": int64 [1] (like BatchNorm's num_batches_tracked).
model::ModelParameters params(std::vector<double> w, float b, std::int64_t steps) {
  std::vector<model::Tensor> ts;
  ts.push_back(tensor("w", model::DType::kFloat64, std::move(w)));
  ts.push_back(tensor("b", model::DType::kFloat32, std::vector<float>{b}));
  ts.push_back(tensor("steps", model::DType::kInt64, std::vector<std::int64_t>{steps}));
  return model::ModelParameters(std::move(ts));
}

template <typename T>
std::vector<T> values(const model::ModelParameters& p, const std::string& name) {
  auto span = p.find(name)->as<T>();
  return {span.begin(), span.end()};
}

// η = 0.5, β1 = 0.5, β2 = 0.75, τ = 0.5 (so v_{-1} = τ² = 0.25): values that make the hand computation readable.
constexpr ServerOptimizerOptions kOptions{0.5, 0.5, 0.75, 0.5};
constexpr double kEta = 0.5;
constexpr double kTau = 0.5;

// Round 1 from x0 = (w 0, 1, -0.5; b 0.25; steps 10). Two clients: deltas (w 1, -2, 0; b 0.5; steps 1) with 1
// example and (w 3, 2, 0; b -0.5; steps 2) with 3, so Δ1 = (w 2.5, 1, 0; b -0.25) and the steps mean 1.75 -> 2.
// Round 2: one client, Δ2 = (w -1, 1, 0.5; b 0.25; steps 3), 5 examples.
struct TwoRounds {
  model::ModelParameters x0 = params({0.0, 1.0, -0.5}, 0.25f, 10);
  model::ModelParameters x1, x2;

  explicit TwoRounds(Strategy& s) {
    s.begin_round(x0);
    s.accumulate(params({1.0, -2.0, 0.0}, 0.5f, 1), 1);
    s.accumulate(params({3.0, 2.0, 0.0}, -0.5f, 2), 3);
    x1 = s.finish_round(x0);
    s.begin_round(x1);
    s.accumulate(params({-1.0, 1.0, 0.5}, 0.25f, 3), 5);
    x2 = s.finish_round(x1);
  }
};

// x + η m / (sqrt(v) + τ), for hand-derived m and v.
double step(double x, double m, double v) {
  return x + kEta * m / (std::sqrt(v) + kTau);
}

void check_w(const model::ModelParameters& p, std::vector<double> expected) {
  const auto w = values<double>(p, "w");
  REQUIRE(w.size() == expected.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    CAPTURE(i);
    CHECK(w[i] == Approx(expected[i]).epsilon(1e-12));
  }
}

}  // namespace

// The first moment is the same for all three: m1 = 0.5 * Δ1 = (1.25, 0.5, 0; -0.125),
// m2 = 0.5 * m1 + 0.5 * Δ2 = (0.125, 0.75, 0.25; 0.0625).

TEST_CASE("FedAdagrad matches hand-computed updates over two rounds with its state carried") {
  FedAdagrad opt(kOptions);
  CHECK(opt.name() == "fedadagrad");
  TwoRounds r(opt);
  // v1 = 0.25 + Δ1² = (6.5, 1.25, 0.25; 0.3125); v2 = v1 + Δ2² = (7.5, 2.25, 0.5; 0.375).
  const double w1[] = {step(0.0, 1.25, 6.5), step(1.0, 0.5, 1.25), -0.5};
  check_w(r.x1, {w1[0], w1[1], w1[2]});
  check_w(r.x2, {step(w1[0], 0.125, 7.5), step(w1[1], 0.75, 2.25), step(w1[2], 0.25, 0.5)});
  CHECK(values<double>(r.x2, "w")[1] == Approx(1.3420084971874737).epsilon(1e-12));  // 1 + 0.5·0.5/1.618.. + 0.5·0.75/2
  const float b1 = static_cast<float>(step(0.25, -0.125, 0.3125));
  CHECK(values<float>(r.x1, "b")[0] == b1);
  CHECK(values<float>(r.x2, "b")[0] == Approx(step(b1, 0.0625, 0.375)).epsilon(1e-6));
  // Integer tensors take FedAvg's rounded mean delta: 10 + round(1.75) = 12, then 12 + 3 = 15.
  CHECK(values<std::int64_t>(r.x1, "steps") == std::vector<std::int64_t>{12});
  CHECK(values<std::int64_t>(r.x2, "steps") == std::vector<std::int64_t>{15});
  CHECK(opt.steps() == 2);
}

TEST_CASE("FedAdam matches hand-computed updates over two rounds with its state carried") {
  FedAdam opt(kOptions);
  CHECK(opt.name() == "fedadam");
  TwoRounds r(opt);
  // v1 = 0.75 * 0.25 + 0.25 * Δ1² = (1.75, 0.4375, 0.1875; 0.203125)
  // v2 = 0.75 * v1 + 0.25 * Δ2² = (1.5625, 0.578125, 0.203125; 0.16796875)
  const double w1[] = {step(0.0, 1.25, 1.75), step(1.0, 0.5, 0.4375), -0.5};
  check_w(r.x1, {w1[0], w1[1], w1[2]});
  check_w(r.x2, {step(w1[0], 0.125, 1.5625), step(w1[1], 0.75, 0.578125), step(w1[2], 0.25, 0.203125)});
  CHECK(values<double>(r.x2, "w")[0] == Approx(0.3785791421860754).epsilon(1e-12));
  const float b1 = static_cast<float>(step(0.25, -0.125, 0.203125));
  CHECK(values<float>(r.x1, "b")[0] == b1);
  CHECK(values<float>(r.x2, "b")[0] == Approx(step(b1, 0.0625, 0.16796875)).epsilon(1e-6));
  CHECK(values<std::int64_t>(r.x1, "steps") == std::vector<std::int64_t>{12});
  CHECK(values<std::int64_t>(r.x2, "steps") == std::vector<std::int64_t>{15});
}

TEST_CASE("FedYogi matches hand-computed updates over two rounds with its state carried") {
  FedYogi opt(kOptions);
  CHECK(opt.name() == "fedyogi");
  TwoRounds r(opt);
  // v1 = v0 - 0.25 Δ1² sign(v0 - Δ1²), v0 = 0.25:
  //   w0: 0.25 < 6.25 -> 0.25 + 1.5625 = 1.8125;  w1: 0.25 < 1 -> 0.5;  w2: Δ = 0, sign(+) -> 0.25;
  //   b: 0.25 > 0.0625 -> 0.25 - 0.015625 = 0.234375.
  // v2 = v1 - 0.25 Δ2² sign(v1 - Δ2²):
  //   w0: 1.8125 > 1 -> 1.5625;  w1: 0.5 < 1 -> 0.75;  w2: 0.25 = 0.25, sign 0 -> 0.25;
  //   b: 0.234375 > 0.0625 -> 0.21875.
  const double w1[] = {step(0.0, 1.25, 1.8125), step(1.0, 0.5, 0.5), -0.5};
  check_w(r.x1, {w1[0], w1[1], w1[2]});
  check_w(r.x2, {step(w1[0], 0.125, 1.5625), step(w1[1], 0.75, 0.75), step(w1[2], 0.25, 0.25)});
  CHECK(values<double>(r.x2, "w")[2] == Approx(-0.375).epsilon(1e-12));  // -0.5 + 0.5·0.25/(0.5 + 0.5)
  const float b1 = static_cast<float>(step(0.25, -0.125, 0.234375));
  CHECK(values<float>(r.x1, "b")[0] == b1);
  CHECK(values<float>(r.x2, "b")[0] == Approx(step(b1, 0.0625, 0.21875)).epsilon(1e-6));
  CHECK(values<std::int64_t>(r.x2, "steps") == std::vector<std::int64_t>{15});
}

TEST_CASE("server optimizers keep their moments across rounds and an abandoned round leaves them untouched") {
  // The same round-2 update applied by a fresh optimizer gives another model than after round 1: state matters.
  FedAdam carried(kOptions);
  TwoRounds r(carried);
  FedAdam fresh(kOptions);
  fresh.begin_round(r.x1);
  fresh.accumulate(params({-1.0, 1.0, 0.5}, 0.25f, 3), 5);
  CHECK_FALSE(fresh.finish_round(r.x1) == r.x2);

  // A round that begins, accumulates and is abandoned (no finish_round) does not disturb the moments.
  FedYogi a(kOptions), b(kOptions);
  TwoRounds ra(a);
  TwoRounds rb(b);
  a.begin_round(ra.x2);
  a.accumulate(params({100.0, 100.0, 100.0}, 100.0f, 100), 7);
  a.begin_round(ra.x2);
  a.accumulate(params({0.5, 0.5, 0.5}, 0.5f, 0), 2);
  b.begin_round(rb.x2);
  b.accumulate(params({0.5, 0.5, 0.5}, 0.5f, 0), 2);
  CHECK(a.finish_round(ra.x2) == b.finish_round(rb.x2));

  // A secure round's sole update, kept rather than summed, moves the optimizer exactly as the summed one does.
  FedAdam sole(kOptions), summed(kOptions);
  TwoRounds rs(sole);
  TwoRounds rt(summed);
  sole.begin_round(rs.x2);
  sole.accumulate_sole(params({0.25, -0.75, 2.0}, -0.125f, 1), 1);
  summed.begin_round(rt.x2);
  summed.accumulate(params({0.25, -0.75, 2.0}, -0.125f, 1), 1);
  CHECK(sole.finish_round(rs.x2) == summed.finish_round(rt.x2));
}

TEST_CASE("server optimizers refuse bad hyper-parameters and finishing a round without updates") {
  CHECK_THROWS_WITH(FedAdam(ServerOptimizerOptions{0.0, 0.9, 0.99, 1e-3}), Catch::Contains("learning rate"));
  CHECK_THROWS_WITH(FedAdam(ServerOptimizerOptions{std::numeric_limits<double>::infinity(), 0.9, 0.99, 1e-3}),
                    Catch::Contains("learning rate"));
  CHECK_THROWS_WITH(FedYogi(ServerOptimizerOptions{0.01, 1.0, 0.99, 1e-3}), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(FedYogi(ServerOptimizerOptions{0.01, 0.9, -0.1, 1e-3}), Catch::Contains("beta2"));
  CHECK_THROWS_WITH(FedAdagrad(ServerOptimizerOptions{0.01, 0.9, 0.99, 0.0}), Catch::Contains("tau"));
  CHECK_NOTHROW(FedAdagrad(ServerOptimizerOptions{0.01, 0.9, 5.0, 1e-3}));  // FedAdagrad has no β2

  FedAdam opt;
  const auto x = params({0, 0, 0}, 0, 0);
  opt.begin_round(x);
  CHECK_THROWS_WITH(opt.finish_round(x), Catch::Contains("FedAdam") && Catch::Contains("no updates"));
}

TEST_CASE("server optimizer defaults are the documented ones") {
  const ServerOptimizerOptions o;
  CHECK(o.learning_rate == 0.01);
  CHECK(o.beta1 == 0.9);
  CHECK(o.beta2 == 0.99);
  CHECK(o.tau == 1e-3);
  const StrategyOptions s;
  CHECK(s.name == "fedavg");
  CHECK(s.server_learning_rate == o.learning_rate);
  CHECK(s.beta1 == o.beta1);
  CHECK(s.beta2 == o.beta2);
  CHECK(s.tau == o.tau);
}

TEST_CASE("make_strategy builds every known strategy by name") {
  CHECK(known_strategies() == std::vector<std::string>{"fedavg", "fedprox", "fedadam", "fedyogi", "fedadagrad"});
  for (const auto& name : known_strategies()) {
    CAPTURE(name);
    StrategyOptions o;
    o.name = name;
    const auto s = make_strategy(o);
    REQUIRE(s);
    CHECK(s->name() == name);
  }
  // FedProx's server side is FedAvg; the factory passes the hyper-parameters to the optimizers.
  StrategyOptions prox;
  prox.name = "fedprox";
  const auto p = make_strategy(prox);
  FedAvg fedavg;
  TwoRounds a(*p), b(fedavg);
  CHECK(a.x2 == b.x2);

  StrategyOptions adam;
  adam.name = "fedadam";
  adam.server_learning_rate = kOptions.learning_rate;
  adam.beta1 = kOptions.beta1;
  adam.beta2 = kOptions.beta2;
  adam.tau = kOptions.tau;
  FedAdam direct(kOptions);
  const auto built = make_strategy(adam);
  TwoRounds c(*built), d(direct);
  CHECK(c.x2 == d.x2);
}

TEST_CASE("make_strategy refuses an unknown name and lists the known ones") {
  StrategyOptions o;
  o.name = "fedsgd";
  CHECK_THROWS_AS(make_strategy(o), Error);
  CHECK_THROWS_WITH(make_strategy(o), Catch::Contains("'fedsgd'") && Catch::Contains("fedavg") &&
                                          Catch::Contains("fedprox") && Catch::Contains("fedadam") &&
                                          Catch::Contains("fedyogi") && Catch::Contains("fedadagrad"));
  o.name = "fedadam";
  o.tau = -1;
  CHECK_THROWS_WITH(make_strategy(o), Catch::Contains("tau"));
}

TEST_CASE("a server optimizer restored from its saved state continues exactly as one that never stopped") {
  for (const std::string name : {"fedadam", "fedyogi", "fedadagrad"}) {
    INFO(name);
    StrategyOptions options;
    options.name = name;
    auto uninterrupted = make_strategy(options);
    auto first_life = make_strategy(options);
    auto round = [](Strategy& s, const model::ModelParameters& global, double d) {
      s.begin_round(global);
      s.accumulate(params({d, -d, 2 * d}, static_cast<float>(d), 1), 3);
      s.accumulate(params({-d, d, d}, static_cast<float>(-d), 2), 1);
      return s.finish_round(global);
    };
    auto g0 = params({1, 2, 3}, 0.5f, 0);
    auto a1 = round(*uninterrupted, g0, 0.1);
    auto b1 = round(*first_life, g0, 0.1);
    REQUIRE(a1 == b1);
    // The aggregator dies here; a new process restores the checkpointed state.
    const auto saved = first_life->save_state();
    CHECK(saved.find("steps") != nullptr);
    auto second_life = make_strategy(options);
    second_life->load_state(saved, b1);
    CHECK(round(*uninterrupted, a1, 0.3) == round(*second_life, b1, 0.3));
  }
}

TEST_CASE("strategy state that does not fit is refused with the reason") {
  StrategyOptions adam;
  adam.name = "fedadam";
  auto s = make_strategy(adam);
  const auto global = params({1, 2, 3}, 0.5f, 0);
  s->begin_round(global);
  s->accumulate(params({1, 1, 1}, 1.0f, 1), 1);
  const auto state = s->save_state();
  s->finish_round(global);
  StrategyOptions avg;
  avg.name = "fedavg";
  CHECK_THROWS_WITH(make_strategy(avg)->load_state(make_strategy(adam)->save_state(), global),
                    Catch::Contains("another strategy"));
  CHECK_THROWS_WITH(make_strategy(adam)->load_state(model::ModelParameters{}, global), Catch::Contains("no optimizer state"));
  auto stepped = s->save_state();
  auto other_model = params({1, 2, 3, 4}, 0.5f, 0);
  CHECK_THROWS_WITH(make_strategy(adam)->load_state(stepped, other_model), Catch::Contains("does not fit tensor 'w'"));
  CHECK_NOTHROW(make_strategy(adam)->load_state(state, global));
}
