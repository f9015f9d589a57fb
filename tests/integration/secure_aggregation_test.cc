// Secure aggregation end to end: the real sotto-aggregator and sotto-client processes over mutual TLS, with SecAgg+
// on. The aggregator only ever holds masked vectors and their sum; the new global model must still be the global
// plus the mean of the clients' clipped updates (within quantization), and a client lost mid-round must not stop
// the round while enough remain.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "common/codec/model_file.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

struct SecureRun {
  TempDir dir{"secagg"};
  Pki pki;
  AggregatorOptions agg;
  std::unique_ptr<Process> aggregator;
  std::vector<std::unique_ptr<Process>> clients;

  SecureRun(int n, std::uint32_t cohort_min, std::uint64_t rounds) : pki(make_pki(dir / "pki", n)) {
    agg.state_dir = dir / "aggregator";
    agg.pki = pki;
    agg.total_rounds = rounds;
    agg.cohort_target = static_cast<std::uint32_t>(n);
    agg.cohort_min = cohort_min;
    agg.extra_toml = "[secure_aggregation]\nenabled = true\nstep_deadline_s = 20\n[privacy]\nclip_norm = 100.0\n";
    aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
    const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
    for (int i = 1; i <= n; ++i) {
      ClientOptions c = mtls_client_options(pki, i, port);
      c.num_shards = static_cast<std::uint32_t>(n);
      c.shard_index = static_cast<std::uint32_t>(i - 1);
      c.max_examples = 1000;
      c.state_dir = dir / c.id;
      clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
    }
  }
};

}  // namespace

TEST_CASE("secure aggregation: the global model moves by the mean of the clients' updates while the aggregator sees only masked vectors",
          "[integration][secagg]") {
  SecureRun run(4, 3, 2);
  for (auto& c : run.clients) {
    const auto code = c->wait_for_exit(150s);
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(code == 0);
  }
  REQUIRE(run.aggregator->wait_for_exit(30s) == 0);
  const auto rounds = read_jsonl(run.agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) {
    INFO(r.dump());
    CHECK(r.at("status") == "completed");
    CHECK(r.at("secagg").at("n") == 4);
    CHECK(r.at("secagg").at("survivors").at("unmasked") == 4);
    // Every client's masked input carries one 32-bit word per floating-point parameter (80,394 of them).
    CHECK(r.at("secagg").at("bytes_in").at("masked_input").get<std::uint64_t>() >= 4u * 4u * 80394u);
    CHECK(r.at("secagg").at("bytes_in").at("advertise").get<std::uint64_t>() >= 4u * 64u);
    CHECK(r.at("secagg").at("bytes_out").at("share_keys").get<std::uint64_t>() > 0);
    CHECK(r.at("secagg").at("bytes_in").at("unmask").get<std::uint64_t>() > 0);
  }
  for (std::uint64_t round = 1; round <= 2; ++round) {
    const auto before = codec::read_model_file(run.agg.state_dir / ("model-round-" + std::to_string(round - 1) + ".sotto"));
    const auto after = codec::read_model_file(run.agg.state_dir / ("model-round-" + std::to_string(round) + ".sotto"));
    std::vector<codec::ModelFile> locals;
    for (int i = 1; i <= 4; ++i) {
      locals.push_back(codec::read_model_file(run.dir / ("client-" + std::to_string(i)) /
                                              ("local-round-" + std::to_string(round) + ".sotto")));
    }
    for (std::size_t t = 0; t < after.model.size(); ++t) {
      const auto& out = after.model.tensors()[t];
      const auto& in = before.model.tensors()[t];
      INFO("round " << round << " tensor " << out.name);
      if (out.dtype != model::DType::kFloat32) {
        CHECK(out.data == in.data);  // integer buffers keep the global value under secure aggregation
        continue;
      }
      auto x = in.as<float>();
      auto y = out.as<float>();
      double worst = 0;
      for (std::size_t e = 0; e < y.size(); ++e) {
        double mean = 0;
        for (const auto& l : locals) mean += (l.model.tensors()[t].as<float>()[e] - x[e]) / 4.0;
        worst = std::max(worst, std::abs(static_cast<double>(y[e]) - (x[e] + mean)));
      }
      CHECK(worst < 1e-5);
    }
  }
}

TEST_CASE("secure aggregation: a client killed during training is dropped and the others' sum is still recovered",
          "[integration][secagg]") {
  SecureRun run(5, 3, 1);
  auto& victim = *run.clients[4];
  REQUIRE(wait_until([&] { return victim.log_contains("received the global model"); }, 120s, 5ms));
  victim.kill(SIGKILL);
  for (int i = 0; i < 4; ++i) {
    const auto code = run.clients[i]->wait_for_exit(150s);
    INFO(run.clients[i]->name() << " log:\n" << run.clients[i]->log_text());
    REQUIRE(code == 0);
  }
  REQUIRE(run.aggregator->wait_for_exit(30s) == 0);
  const auto rounds = read_jsonl(run.agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 1);
  INFO(rounds[0].dump());
  CHECK(rounds[0].at("status") == "completed");
  CHECK(rounds[0].at("survivors") == 4);
  CHECK(rounds[0].at("secagg").at("n") == 5);
  CHECK(rounds[0].at("secagg").at("survivors").at("advertised") == 4);
  CHECK(rounds[0].at("dropped").size() == 1);
}

}  // namespace sotto::test
