// Private analytics end to end: real sotto-client processes contribute one-hot histograms to secure sums under
// distributed DP over mutual TLS. Each device checks its contribution against the plan's bound and adds its own
// discrete Gaussian share; the aggregator publishes only the signed, noised histogram, whose error over the rounds
// has mean 0 and the configured variance, and every epsilon it states is sotto-dp's. A device whose contribution
// is over the bound refuses it and the round goes on without it.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr int kBins = 256;
constexpr double kNoise = 2.0;

std::string sum_toml(int rounds_bits = 32) {
  return "[task]\nkind = \"secure_sum\"\nsecure_sum_length = " + std::to_string(kBins) +
         "\nsecure_sum_linf_bound = 1\nsecure_sum_l1_bound = 1\n[secure_aggregation]\nenabled = true\n"
         "step_deadline_s = 20\nbits = " + std::to_string(rounds_bits) +
         "\n[privacy]\nmode = \"distributed\"\nnoise_multiplier = " + std::to_string(kNoise) +
         "\ndelta = 1e-5\nmin_survivors = 3\n";
}

int bin_of(int client) { return (client * 37) % kBins; }

// Client i's histogram file: a single count in its bin (or `value` there).
fs::path write_histogram(const fs::path& path, int client, int value = 1) {
  std::ofstream out(path);
  for (int b = 0; b < kBins; ++b) out << (b == bin_of(client) ? value : 0) << (b % 16 == 15 ? "\n" : " ");
  return path;
}

double sotto_dp_sum_epsilon(std::uint64_t steps, int clients, int honest, const fs::path& dir) {
  Process p("sotto-dp",
            {bin_path("sotto-dp").string(), "epsilon", "--mechanism", "sum", "--linf-bound", "1", "--l1-bound", "1",
             "--sampling-rate", "1", "--noise-multiplier", std::to_string(kNoise), "--steps", std::to_string(steps),
             "--delta", "1e-5", "--clients", std::to_string(clients), "--honest", std::to_string(honest),
             "--dimension", std::to_string(kBins)},
            dir / ("sotto-dp-" + std::to_string(steps) + ".log"));
  REQUIRE(p.wait_for_exit(60s) == 0);
  const std::string text = p.log_text();
  return nlohmann::json::parse(text.substr(text.rfind('{'))).at("epsilon").get<double>();
}

struct SumRun {
  TempDir dir{"private-sum"};
  Pki pki;
  AggregatorOptions agg;
  std::unique_ptr<Process> aggregator;
  std::vector<std::unique_ptr<Process>> clients;

  SumRun(int clients_count, std::uint64_t rounds) : pki(make_pki(dir / "pki", clients_count)) {
    agg.state_dir = dir / "aggregator";
    agg.pki = pki;
    agg.total_rounds = rounds;
    agg.cohort_target = static_cast<std::uint32_t>(clients_count);
    agg.cohort_min = 3;
    agg.extra_toml = sum_toml();
    aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  }

  void start_client(int i, const fs::path& histogram) {
    const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
    ClientOptions c = mtls_client_options(pki, i, port);
    c.save_local_models = false;
    c.state_dir = dir / (c.id + "-state");
    const auto config = write_client_config(dir / (c.id + ".toml"), c);
    clients.push_back(std::make_unique<Process>(
        c.id,
        std::vector<std::string>{bin_path("sotto-client").string(), "--config", config.string(), "--contribute",
                                 histogram.string()},
        dir / (c.id + ".log")));
  }
};

}  // namespace

TEST_CASE("private secure sum over TLS: the noised histogram has the true counts as its mean and the configured "
          "variance and sotto-dp reproduces every epsilon",
          "[integration][dp][secagg]") {
  constexpr int kClients = 5;
  constexpr int kRounds = 8;
  SumRun run(kClients, kRounds);
  for (int i = 1; i <= kClients; ++i) run.start_client(i, write_histogram(run.dir / ("h" + std::to_string(i)), i));
  for (auto& c : run.clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(c->wait_for_exit(150s) == 0);
  }
  INFO("aggregator log:\n" << run.aggregator->log_text());
  REQUIRE(run.aggregator->wait_for_exit(60s) == 0);
  const auto rounds = read_jsonl(run.agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == kRounds);
  double sum = 0, squares = 0, variance = 0;
  for (const auto& line : rounds) {
    INFO(line.dump());
    REQUIRE(line.at("status") == "completed");
    CHECK_FALSE(line.contains("secure_sum"));  // the exact sum is never published
    const auto& p = line.at("privacy");
    CHECK(p.at("mode") == "distributed");
    CHECK(p.at("honest") == 2);  // min_survivors 3, less ceil(0.05 · 5) colluders
    CHECK(p.at("l2_bound") == 1.0);
    CHECK(p.at("contribution_bound").at("linf") == 1);
    CHECK(p.at("epsilon").get<double>() ==
          Approx(sotto_dp_sum_epsilon(line.at("round"), kClients, 2, run.dir.path())).epsilon(1e-9));
    const double sigma = p.at("local_stddev").get<double>();
    CHECK(sigma == Approx(kNoise / std::sqrt(2.0)));
    variance = kClients * sigma * sigma;  // five shares in the sum (sigma > 1: the sampler's variance is sigma^2)
    const auto published = line.at("private_sum").get<std::vector<std::int64_t>>();
    REQUIRE(published.size() == kBins);
    for (int b = 0; b < kBins; ++b) {
      int truth = 0;
      for (int i = 1; i <= kClients; ++i) truth += bin_of(i) == b ? 1 : 0;
      const double e = static_cast<double>(published[b] - truth);
      sum += e;
      squares += e * e;
    }
  }
  // Mean within 5 standard errors of 0 and mean square within 6 chi-square spreads of the variance.
  const double n = static_cast<double>(kBins) * kRounds;
  CHECK(std::abs(sum / n) < 5 * std::sqrt(variance / n));
  CHECK(squares / n == Approx(variance).epsilon(6 * std::sqrt(2 / n)));
  // Each device's ledger records the round's protection and the epsilon it computed itself.
  const auto ledger = read_ledger(run.dir / "client-1-state");
  INFO(nlohmann::json(ledger).dump());
  const auto completed = std::count_if(ledger.begin(), ledger.end(),
                                       [](const nlohmann::json& e) { return e.at("outcome") == "completed"; });
  CHECK(completed == kRounds);  // each round also has its "sending" entry, written before the upload
  CHECK(ledger.back().at("outcome") == "completed");
  CHECK(ledger.back().at("privacy").at("mode") == "distributed");
  CHECK(ledger.back().at("privacy").at("epsilon").get<double>() ==
        Approx(rounds.back().at("privacy").at("epsilon").get<double>()));
}

TEST_CASE("private secure sum over TLS: a device refuses a contribution over the plan's bound and the others' round "
          "completes",
          "[integration][dp][secagg]") {
  SumRun run(4, 1);
  for (int i = 1; i <= 3; ++i) run.start_client(i, write_histogram(run.dir / ("h" + std::to_string(i)), i));
  run.start_client(4, write_histogram(run.dir / "h4", 4, 2));  // a count of 2: over the L-infinity bound 1
  for (int i = 0; i < 4; ++i) {
    INFO(run.clients[i]->name() << " log:\n" << run.clients[i]->log_text());
    REQUIRE((run.clients[i]->wait_for_exit(150s) == 0) == (i < 3));
  }
  CHECK(run.clients[3]->log_contains("refused, not clipped: entry " + std::to_string(bin_of(4)) +
                                     " is 2, over the plan's L-infinity bound 1"));
  INFO("aggregator log:\n" << run.aggregator->log_text());
  REQUIRE(run.aggregator->wait_for_exit(60s) == 0);
  const auto rounds = read_jsonl(run.agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 1);
  CHECK(rounds[0].at("status") == "completed");
  CHECK(rounds[0].at("contributors").size() == 3);
}

}  // namespace sotto::test
