// The canaries' pieces: directions of unit norm, reproducible and nearly orthogonal; the two-Gaussian epsilon
// against the closed form of Gaussian DP; the estimate from cosines; and a simulation whose model is moved by the
// canaries alone, where they stand out.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "simulations/canaries.h"
#include "simulations/simulation.h"

using namespace sotto;

namespace {

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Gaussian DP (Dong, Roth, Su 2019): the delta at epsilon of telling N(0, 1) from N(mu, 1).
double gdp_delta(double mu, double epsilon) {
  return normal_cdf(-epsilon / mu + mu / 2) - std::exp(epsilon) * normal_cdf(-epsilon / mu - mu / 2);
}

}  // namespace

TEST_CASE("canary directions have unit norm and are reproducible and nearly orthogonal") {
  const sim::CanaryOptions options{4, 4, 9};
  const auto a = sim::canary_direction(options, 0, 10'000), b = sim::canary_direction(options, 1, 10'000);
  double aa = 0, ab = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    aa += a[i] * a[i];
    ab += a[i] * b[i];
  }
  CHECK(aa == Approx(1).epsilon(1e-5));
  CHECK(std::abs(ab) < 6 / std::sqrt(10'000.0));  // a random sign vector's cosine has sd 1/sqrt(d)
  CHECK(sim::canary_direction(options, 0, 10'000) == a);
  CHECK(sim::canary_direction(sim::CanaryOptions{4, 4, 10}, 0, 10'000) != a);
}

TEST_CASE("the two-Gaussian epsilon matches Gaussian DP's closed form") {
  for (double mu : {0.5, 1.0, 3.0}) {
    for (double delta : {1e-3, 1e-5}) {
      const double epsilon = sim::gaussian_pair_epsilon(mu, 1, 0, 1, delta);
      CAPTURE(mu, delta, epsilon);
      CHECK(gdp_delta(mu, epsilon) == Approx(delta).epsilon(0.01));
      CHECK(sim::gaussian_pair_epsilon(0, 2, 2 * mu, 2, delta) == Approx(epsilon).epsilon(1e-3));  // scale-free
    }
  }
  CHECK(sim::gaussian_pair_epsilon(0.3, 1, 0.3, 1, 1e-5) == 0);
}

TEST_CASE("the estimate pools the spread and refuses too few canaries") {
  sim::CanaryCosines same{{-1, 0, 1, -2, 2}, {-1, 0, 1, -2, 2}};
  CHECK(sim::estimate_epsilon(same, 1e-5).epsilon == 0);
  sim::CanaryCosines apart{{9, 10, 11, 8, 12}, {-1, 0, 1, -2, 2}};
  const auto e = sim::estimate_epsilon(apart, 1e-5);
  CHECK(e.inserted_mean == Approx(10));
  CHECK(e.epsilon == Approx(sim::gaussian_pair_epsilon(10, e.held_out_stddev, 0, e.held_out_stddev, 1e-5)));
  CHECK_THROWS_WITH(sim::estimate_epsilon({{1}, {1, 2}}, 1e-5), Catch::Contains("at least 2"));
}

TEST_CASE("canaries that alone move the model stand out of the held-out ones") {
  // Training barely moves the model (learning rate 10^-9) and every update weighs the same, so the model's change
  // is the canaries' directions of the clients drawn: the inserted cosines sit far above the held-out ones.
  const auto dir = std::filesystem::temp_directory_path() / "sotto-sim-test-canaries";
  std::filesystem::remove_all(dir);
  const auto c = sim::load_sim_config(
      "", {"population=40", "cohort_size=20", "rounds=6", "data.max_examples_per_client=20",
           "evaluation.max_examples=100", "plots=false", "threads=2", "privacy.clip_norm=1.0", "canaries.count=20",
           "canaries.held_out=20", "plan.learning_rate=1e-9", "plan.momentum=0.0", "aggregation.weighting=\"uniform\""},
      dir);
  sim::run_simulation(c);
  std::ifstream in(dir / "summary.json");
  const auto canaries = nlohmann::json::parse(in).at("canaries");
  INFO(canaries.dump());
  const double held_out_sd = canaries.at("held_out_cosine_stddev");
  CHECK(canaries.at("inserted_cosine_mean").get<double>() >
        canaries.at("held_out_cosine_mean").get<double>() + 5 * held_out_sd);
  CHECK(canaries.at("epsilon_empirical").get<double>() > 2);
  CHECK(std::filesystem::exists(dir / "canaries.csv"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("canary settings that cannot give an estimate are refused") {
  CHECK_THROWS_WITH(sim::load_sim_config("", {"privacy.clip_norm=1.0", "canaries.count=1"}),
                    Catch::Contains("at least 2"));
  CHECK_THROWS_WITH(sim::load_sim_config("", {"canaries.count=10"}), Catch::Contains("privacy.clip_norm"));
  CHECK(sim::load_sim_config("", {"privacy.clip_norm=1.0", "canaries.count=10"}).sampled_clients() == 110);
}
