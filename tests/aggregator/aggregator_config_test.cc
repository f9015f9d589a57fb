#include "aggregator/aggregator_config.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <limits>

#include "common/codec/plan_codec.h"

#include "tests/support/test_support.h"

using namespace sotto;

namespace {

const char* kMinimal = R"([server]
cert_file = "server.pem"
key_file = "server.key"
ca_file = "ca.pem"
)";

std::filesystem::path write_config(const sotto::test::TempDir& dir, const std::string& text) {
  auto path = dir.path() / "aggregator.toml";
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("aggregator config: defaults, and relative paths resolve against the config file") {
  sotto::test::TempDir dir;
  auto c = aggregator::load_aggregator_config(write_config(dir, kMinimal));
  CHECK(c.cert_file == dir.path() / "server.pem");
  CHECK(c.port == 8443);
  CHECK(c.rounds.total_rounds == 5);
  CHECK(c.rounds.plan.optimizer == "sgd");
  CHECK(c.auth_mode == aggregator::AuthMode::kMutualTlsOrToken);
  CHECK(c.state_dir == dir.path() / "state");
  CHECK(c.max_hello_bytes == 4096);
  CHECK(c.rounds.max_consecutive_abandoned == 10);
  CHECK(c.connection_limits.max_connections == 1024);
  CHECK(c.connection_limits.max_unauthenticated_per_address == 16);
}

TEST_CASE("aggregator config: the connection caps are read, and 0 lifts one") {
  sotto::test::TempDir dir;
  std::string text = kMinimal;
  text += "max_connections = 10\nmax_connections_per_address = 0\nmax_unauthenticated = 5\n"
          "max_unauthenticated_per_address = 2\nmax_hello_bytes = 1024\n";
  const auto c = aggregator::load_aggregator_config(write_config(dir, text));
  CHECK(c.connection_limits.max_connections == 10);
  CHECK(c.connection_limits.max_connections_per_address == 0);
  CHECK(c.connection_limits.max_unauthenticated == 5);
  CHECK(c.connection_limits.max_unauthenticated_per_address == 2);
  CHECK(c.max_hello_bytes == 1024);
}

TEST_CASE("aggregator config: every bad value is refused with its key named") {
  sotto::test::TempDir dir;
  struct Case {
    std::string extra;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"[rounds]\ncohort_target = 2\ncohort_min = 3\n", "'rounds.cohort_min'"},
      {"[rounds]\ncohort_taget = 2\n", "unknown key 'rounds.cohort_taget'"},
      {"[plan]\noptimizer = \"adagrad\"\n", "'plan.optimizer'"},
      {"[plan]\nlearning_rate = -1.0\n", "'plan.learning_rate'"},
      {"[auth]\nmode = \"token\"\n", "'auth.client_tokens'"},
      {"[auth]\ntokens = [\"0123456789abcdef0123\"]\n", "Bind each token to the client ids"},
      {"[auth.client_tokens]\nphone = \"short\"\n", "'auth.client_tokens.phone'"},
      {"[auth.client_tokens]\n\"a/b\" = \"0123456789abcdef0123\"\n", "not a valid client id"},
      {"[server]\nport = 70000\n", "'server.port'"},
      {"[server]\nmax_hello_bytes = 100\n", "'server.max_hello_bytes'"},
      {"[server]\nmax_frame_bytes = 8192\nchunk_bytes = 4096\nmax_hello_bytes = 16384\n", "'server.max_hello_bytes'"},
      {"[server]\nmax_unauthenticated_per_address = -1\n", "'server.max_unauthenticated_per_address'"},
      {"[rounds]\ntotal = \"five\"\n", "'rounds.total' must be an integer"},
  };
  for (const auto& k : cases) {
    std::string text = kMinimal;
    if (k.extra.rfind("[server]", 0) == 0) {
      text.insert(text.find('\n') + 1, k.extra.substr(k.extra.find('\n') + 1));
    } else {
      text += k.extra;
    }
    INFO(text);
    CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, text)), Catch::Contains(k.says));
  }
}

TEST_CASE("aggregator config: a missing required key is named") {
  sotto::test::TempDir dir;
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, "[server]\nport = 1\n")),
                    Catch::Contains("'server.cert_file' is required"));
}

TEST_CASE("aggregator config: strategy keys and plan.proximal_mu are read") {
  sotto::test::TempDir dir;
  auto defaults = aggregator::load_aggregator_config(write_config(dir, kMinimal));
  CHECK(defaults.strategy.name == "fedavg");
  CHECK(defaults.strategy.server_learning_rate == 0.01);
  CHECK(defaults.strategy.beta1 == 0.9);
  CHECK(defaults.strategy.beta2 == 0.99);
  CHECK(defaults.strategy.tau == 1e-3);
  CHECK(defaults.rounds.plan.proximal_mu == 0);

  auto c = aggregator::load_aggregator_config(write_config(
      dir, std::string(kMinimal) + "[strategy]\nname = \"fedyogi\"\nserver_learning_rate = 0.03\nbeta1 = 0.5\n"
                                   "beta2 = 0.9\ntau = 1e-4\n[plan]\nproximal_mu = 0.1\n"));
  CHECK(c.strategy.name == "fedyogi");
  CHECK(c.strategy.server_learning_rate == 0.03);
  CHECK(c.strategy.beta1 == 0.5);
  CHECK(c.strategy.beta2 == 0.9);
  CHECK(c.strategy.tau == 1e-4);
  CHECK(c.rounds.plan.proximal_mu == 0.1);
  CHECK(aggregator::make_strategy(c.strategy)->name() == "fedyogi");

  for (const std::string name : {"fedavg", "fedadam", "fedadagrad"}) {
    CAPTURE(name);
    auto k = aggregator::load_aggregator_config(
        write_config(dir, std::string(kMinimal) + "[strategy]\nname = \"" + name + "\"\n"));
    CHECK(k.strategy.name == name);
  }
  auto prox = aggregator::load_aggregator_config(
      write_config(dir, std::string(kMinimal) + "[strategy]\nname = \"fedprox\"\n[plan]\nproximal_mu = 0.01\n"));
  CHECK(prox.strategy.name == "fedprox");
  CHECK(prox.rounds.plan.proximal_mu == 0.01);
}

TEST_CASE("aggregator config: bad strategy settings are refused with the key named") {
  sotto::test::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[strategy]\nname = \"fedsgd\"\n", "'strategy.name'"},
      {"[strategy]\nname = \"fedprox\"\n", "'plan.proximal_mu'"},
      {"[strategy]\nname = \"fedprox\"\n[plan]\nproximal_mu = 0\n", "'plan.proximal_mu'"},
      {"[plan]\nproximal_mu = -0.5\n", "'plan.proximal_mu'"},
      {"[strategy]\nserver_learning_rate = 0\n", "'strategy.server_learning_rate'"},
      {"[strategy]\nbeta1 = 1.0\n", "'strategy.beta1'"},
      {"[strategy]\nbeta2 = -0.1\n", "'strategy.beta2'"},
      {"[strategy]\ntau = 0\n", "'strategy.tau'"},
      {"[strategy]\nlearning_rate = 0.1\n", "unknown key 'strategy.learning_rate'"},
  };
  for (const auto& [extra, says] : cases) {
    const std::string text = std::string(kMinimal) + extra;
    INFO(text);
    CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, text)), Catch::Contains(says));
  }
  // The unknown-name error lists the known strategies.
  CHECK_THROWS_WITH(
      aggregator::load_aggregator_config(write_config(dir, std::string(kMinimal) + "[strategy]\nname = \"x\"\n")),
      Catch::Contains("fedprox") && Catch::Contains("fedadagrad"));
}

TEST_CASE("plan codec: proximal_mu survives the round trip and a bad one is refused") {
  ml::TrainingPlan plan;
  plan.epochs = 3;
  plan.proximal_mu = 0.125;
  plan.seed = 99;
  const auto back = codec::plan_from_proto(codec::plan_to_proto(plan));
  CHECK(back.proximal_mu == 0.125);
  CHECK(back.epochs == 3);
  CHECK(back.seed == 99);
  // Through the serialised bytes too.
  v1::TrainingPlan parsed;
  REQUIRE(parsed.ParseFromString(codec::plan_to_proto(plan).SerializeAsString()));
  CHECK(codec::plan_from_proto(parsed).proximal_mu == 0.125);
  // An older sender that does not set the field means no proximal term.
  auto old = codec::plan_to_proto(ml::TrainingPlan{});
  old.clear_proximal_mu();
  CHECK(codec::plan_from_proto(old).proximal_mu == 0);

  auto bad = codec::plan_to_proto(plan);
  bad.set_proximal_mu(-1);
  CHECK_THROWS_WITH(codec::plan_from_proto(bad), Catch::Contains("proximal_mu"));
  bad.set_proximal_mu(std::numeric_limits<double>::infinity());
  CHECK_THROWS_WITH(codec::plan_from_proto(bad), Catch::Contains("proximal_mu"));
  bad.set_proximal_mu(std::numeric_limits<double>::quiet_NaN());
  CHECK_THROWS_WITH(codec::plan_from_proto(bad), Catch::Contains("proximal_mu"));
}

TEST_CASE("aggregator config: privacy.clip_norm, the examples cap and the weighting are read with safe defaults") {
  sotto::test::TempDir dir;
  const auto defaults = aggregator::load_aggregator_config(write_config(dir, kMinimal));
  CHECK(defaults.rounds.clip_norm == 0);  // plain rounds: no clipping unless asked
  CHECK(defaults.rounds.max_examples_per_client == 100'000);
  CHECK(defaults.rounds.weighting == aggregator::Weighting::kExamples);
  const auto secure = aggregator::load_aggregator_config(
      write_config(dir, std::string(kMinimal) + "[rounds]\ncohort_min = 3\n[secure_aggregation]\nenabled = true\n"));
  CHECK(secure.rounds.clip_norm == aggregator::kDefaultSecureClipNorm);

  const auto c = aggregator::load_aggregator_config(
      write_config(dir, std::string(kMinimal) + "[rounds]\nmax_examples_per_client = 500\nweighting = \"uniform\"\n"
                                                "[privacy]\nclip_norm = 2.5\n"));
  CHECK(c.rounds.clip_norm == 2.5);
  CHECK(c.rounds.max_examples_per_client == 500);
  CHECK(c.rounds.weighting == aggregator::Weighting::kUniform);

  // The former key still works, with a warning; both at once, or no clip norm with secure aggregation, do not.
  const auto old = aggregator::load_aggregator_config(write_config(
      dir, std::string(kMinimal) + "[rounds]\ncohort_min = 3\n[secure_aggregation]\nenabled = true\nclip_norm = 7.0\n"));
  CHECK(old.rounds.clip_norm == 7.0);
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, std::string(kMinimal) + "[secure_aggregation]\nclip_norm = 7.0\n[privacy]\nclip_norm = 1.0\n")),
                    Catch::Contains("keep only privacy.clip_norm"));
  CHECK_THROWS_WITH(
      aggregator::load_aggregator_config(write_config(
          dir, std::string(kMinimal) + "[rounds]\ncohort_min = 3\n[secure_aggregation]\nenabled = true\n[privacy]\nclip_norm = 0.0\n")),
      Catch::Contains("'privacy.clip_norm'"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, std::string(kMinimal) + "[rounds]\nweighting = \"median\"\n")),
                    Catch::Contains("'rounds.weighting'"));
}

TEST_CASE("aggregator config: [http] is off by default on loopback and a short bearer token is refused") {
  sotto::test::TempDir dir;
  const auto defaults = aggregator::load_aggregator_config(write_config(dir, kMinimal));
  CHECK_FALSE(defaults.http.enabled);
  CHECK(defaults.http.listen_address == "127.0.0.1");
  CHECK(defaults.http.port == 9464);
  const auto on = aggregator::load_aggregator_config(
      write_config(dir, std::string(kMinimal) + "[http]\nenabled = true\nport = 0\ntls = true\nbearer_token = \"" +
                            std::string(24, 'x') + "\"\n"));
  CHECK(on.http.enabled);
  CHECK(on.http.port == 0);
  CHECK(on.http.tls);
  CHECK_FALSE(defaults.http.tls);
  CHECK(on.http.bearer_token == std::string(24, 'x'));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, std::string(kMinimal) + "[http]\nbearer_token = \"short\"\n")),
                    Catch::Contains("http.bearer_token"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, std::string(kMinimal) + "[http]\npath = 1\n")),
                    Catch::Contains("http.path"));
}

TEST_CASE("aggregator config: a private secure sum reads its contribution bound and refuses to run without one") {
  sotto::test::TempDir dir;
  const std::string sum = std::string(kMinimal) +
                          "[task]\nkind = \"secure_sum\"\nsecure_sum_length = 8\n"
                          "[secure_aggregation]\nenabled = true\n[rounds]\ncohort_min = 3\n"
                          "[privacy]\nnoise_multiplier = 2.0\n";
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, sum)),
                    Catch::Contains("'task.secure_sum_linf_bound'") && Catch::Contains("sensitivity"));
  const std::string bounded = std::string(kMinimal) +
                              "[task]\nkind = \"secure_sum\"\nsecure_sum_length = 8\nsecure_sum_linf_bound = 1\n"
                              "secure_sum_l1_bound = 1\n[secure_aggregation]\nenabled = true\n[rounds]\n"
                              "cohort_min = 3\n[privacy]\nnoise_multiplier = 2.0\n";
  const auto c = aggregator::load_aggregator_config(write_config(dir, bounded));
  CHECK(c.rounds.secure_sum_bound.linf == 1);
  CHECK(c.rounds.secure_sum_bound.l1 == 1);
  CHECK(c.rounds.privacy.mode == aggregator::PrivacyMode::kDistributed);
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, std::string(kMinimal) + "[task]\nsecure_sum_linf_bound = 1\n")),
                    Catch::Contains("'task.secure_sum_linf_bound' applies only to task.kind"));
}

TEST_CASE("aggregator config: adaptive clipping is read with the paper's defaults and refused without a noised sum") {
  sotto::test::TempDir dir;
  const std::string secure = std::string(kMinimal) + "[secure_aggregation]\nenabled = true\n[rounds]\ncohort_min = 3\n";
  const auto c = aggregator::load_aggregator_config(
      write_config(dir, secure + "[privacy]\nnoise_multiplier = 1.0\nadaptive_clipping = true\n"));
  const auto& a = c.rounds.privacy.adaptive_clipping;
  CHECK(a.enabled);
  CHECK(a.target_quantile == 0.5);
  CHECK(a.learning_rate == 0.2);
  CHECK(a.count_stddev == 0);  // the expected cohort / 20
  const auto tuned = aggregator::load_aggregator_config(write_config(
      dir, secure + "[privacy]\nnoise_multiplier = 1.0\nadaptive_clipping = true\ntarget_unclipped_quantile = 0.8\n"
                    "clip_learning_rate = 0.1\nclipped_count_stddev = 4.0\n"));
  CHECK(tuned.rounds.privacy.adaptive_clipping.target_quantile == 0.8);
  CHECK(tuned.rounds.privacy.adaptive_clipping.count_stddev == 4.0);
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, secure + "[privacy]\nadaptive_clipping = true\n")),  // no noise: mode off
                    Catch::Contains("'privacy.adaptive_clipping'") && Catch::Contains("secure aggregation"));
  // Central DP on plain rounds: the trusted aggregator sums the bits under its own noise.
  CHECK(aggregator::load_aggregator_config(
            write_config(dir, std::string(kMinimal) + "[privacy]\nmode = \"central\"\nclip_norm = 1.0\n"
                                                      "noise_multiplier = 1.0\nadaptive_clipping = true\n"))
            .rounds.privacy.adaptive_clipping.enabled);
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, std::string(kMinimal) + "[privacy]\nmode = \"local\"\nclip_norm = 1.0\n"
                                                     "noise_multiplier = 1.0\nadaptive_clipping = true\n")),
                    Catch::Contains("'privacy.adaptive_clipping'") && Catch::Contains("local DP"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, secure + "[privacy]\nnoise_multiplier = 1.0\nadaptive_clipping = true\n"
                                      "target_unclipped_quantile = 1.5\n")),
                    Catch::Contains("privacy.target_unclipped_quantile"));
}

TEST_CASE("aggregator config: [personalization] goes into the plan, and contradictions are refused") {
  sotto::test::TempDir dir;
  const auto cfg = aggregator::load_aggregator_config(write_config(
      dir, std::string(kMinimal) + "[personalization]\npersonal = [\"fc2.*\"]\nhead_epochs = 2\n"));
  CHECK(cfg.rounds.plan.personal == std::vector<std::string>{"fc2.*"});
  CHECK(cfg.rounds.plan.head_epochs == 2);
  const auto ditto = aggregator::load_aggregator_config(
      write_config(dir, std::string(kMinimal) + "[personalization]\nditto_lambda = 0.1\n"));
  CHECK(ditto.rounds.plan.ditto_lambda == 0.1);
  CHECK(codec::plan_from_proto(codec::plan_to_proto(ditto.rounds.plan)).ditto_lambda == 0.1);
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, std::string(kMinimal) + "[personalization]\nditto_lambda = 0.1\nfinetune_epochs = 1\n")),
                    Catch::Contains("choose fine-tuning or Ditto"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, std::string(kMinimal) + "[personalization]\nhead_epochs = 1\n")),
                    Catch::Contains("needs personalization.personal"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, std::string(kMinimal) + "[personalization]\npersonal = [\"\"]\n")),
                    Catch::Contains("'personalization.personal'"));
}

TEST_CASE("aggregator config: accuracy histograms need secure training rounds, and their own noise under DP") {
  sotto::test::TempDir dir;
  const std::string secure = std::string(kMinimal) + "[secure_aggregation]\nenabled = true\n[rounds]\ncohort_min = 3\n";
  const auto c = aggregator::load_aggregator_config(
      write_config(dir, secure + "[evaluation]\nlocal_histogram_bins = 20\n"));
  CHECK(c.rounds.evaluation_bins == 20);
  CHECK(aggregator::load_aggregator_config(write_config(dir, secure)).rounds.evaluation_bins == 0);
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, std::string(kMinimal) + "[evaluation]\nlocal_histogram_bins = 20\n")),
                    Catch::Contains("'evaluation.local_histogram_bins'") && Catch::Contains("secure_aggregation"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, secure + "[evaluation]\nlocal_histogram_bins = 101\n")),
                    Catch::Contains("'evaluation.local_histogram_bins'"));
  const std::string dp = "[privacy]\nnoise_multiplier = 1.0\nclip_norm = 1.0\n";
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(
                        write_config(dir, secure + "[evaluation]\nlocal_histogram_bins = 20\n" + dp)),
                    Catch::Contains("'evaluation.histogram_noise_multiplier'") && Catch::Contains("is required"));
  const auto noised = aggregator::load_aggregator_config(write_config(
      dir, secure + "[evaluation]\nlocal_histogram_bins = 20\nhistogram_noise_multiplier = 2.5\n" + dp));
  CHECK(noised.rounds.evaluation_bins == 20);
  CHECK(noised.rounds.privacy.histogram_noise_multiplier == 2.5);
  // A share too small for the exact sampler with 50 honest survivors: refused at load, not at every round.
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, std::string(kMinimal) + "[secure_aggregation]\nenabled = true\n[rounds]\n"
                                 "cohort_target = 100\ncohort_min = 60\n[evaluation]\nlocal_histogram_bins = 20\n"
                                 "histogram_noise_multiplier = 0.1\n" + dp + "min_survivors = 50\n")),
                    Catch::Contains("'evaluation.histogram_noise_multiplier'"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, secure + "[evaluation]\nlocal_histogram_bins = 20\nhistogram_noise_multiplier = 2.5\n" +
                                 dp + "mode = \"central\"\n")),
                    Catch::Contains("'evaluation.local_histogram_bins'") && Catch::Contains("\"distributed\" only"));
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(
                        dir, secure + "[evaluation]\nlocal_histogram_bins = 20\nhistogram_noise_multiplier = 2\n")),
                    Catch::Contains("'evaluation.histogram_noise_multiplier'") && Catch::Contains("applies only"));
}
