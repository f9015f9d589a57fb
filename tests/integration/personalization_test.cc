// Personal tensors through the real binaries over TLS: the aggregator's plan keeps BatchNorm statistics (FedBN) or
// a head (FedPer) on the devices. Every byte a client writes to the TLS stream is captured (audit.sent_frames_file)
// and shown not to depend on its personal tensors (but for the one field that measures time, not data: the
// upload's train_seconds); the global model holds none of them; the device keeps them,
// sealed in its state store, across restarts.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <sstream>

#include "client/personal_state.h"
#include "client/state_key.h"
#include "client/state_store.h"
#include "common/codec/model_file.h"
#include "sotto/v1/sotto.pb.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

const std::string kFedBn =
    "[personalization]\npersonal = [\"*.running_mean\", \"*.running_var\", \"*.num_batches_tracked\"]\n";

// One aggregator round (state in dir/tag) with one client whose state is `client_state`; returns the bytes the
// client wrote.
std::string one_round(const fs::path& dir, const Pki& pki, const fs::path& client_state, const std::string& tag,
                      const std::string& personalization) {
  AggregatorOptions agg = fixed_cohort_options(dir / tag, pki, 1, 1);
  agg.state_dir = dir / tag / "aggregator";
  agg.extra_toml = personalization;
  auto aggregator =
      start_aggregator(write_aggregator_config(dir / tag / "aggregator.toml", agg), dir / tag / "agg.log");
  const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  ClientOptions c = mtls_client_options(pki, 1, port);
  c.state_dir = client_state;
  c.max_examples = 200;
  const fs::path capture = dir / tag / "sent.bin";
  c.extra_toml = personalization + "[audit]\nsent_frames_file = \"" + capture.string() + "\"\n";
  auto client = start_client(c.id, write_client_config(dir / tag / "client.toml", c), dir / tag / "client.log");
  const auto code = client->wait_for_exit(120s);
  INFO(client->log_text() << "\n" << aggregator->log_text());
  REQUIRE(code == 0);
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  return read_file(capture);
}

// The frames of a capture with the one field that measures time, not data (the upload's train_seconds), zeroed.
std::vector<std::string> frames_without_timing(const std::string& capture) {
  std::vector<std::string> frames;
  for (std::size_t at = 0; at + 4 <= capture.size();) {
    const auto byte = [&](std::size_t i) {
      return static_cast<std::uint32_t>(static_cast<unsigned char>(capture[at + i]));
    };
    const std::uint32_t length = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
    REQUIRE(at + 4 + length <= capture.size());
    v1::Envelope env;
    REQUIRE(env.ParseFromString(capture.substr(at + 4, length)));
    if (env.has_update()) env.mutable_update()->set_train_seconds(0);
    frames.push_back(env.SerializeAsString());
    at += 4 + length;
  }
  return frames;
}

// A copy of a client's state directory with its key and kept generation.
void copy_client_state(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  const fs::path key = state_key_file(from);
  fs::copy_file(key, state_key_file(to));
  fs::path generation = key;
  generation += ".generation";
  fs::path copied = state_key_file(to);
  copied += ".generation";
  if (fs::exists(generation)) fs::copy_file(generation, copied);
}

model::ModelParameters personal_tensors(const fs::path& state_dir) {
  client::StateStore store(state_dir, client::read_state_key_file(state_key_file(state_dir)));
  return client::PersonalState(&store).load();
}

// Adds `delta` to every float32 personal tensor the device keeps.
void perturb_personal_tensors(const fs::path& state_dir, float delta) {
  client::StateStore store(state_dir, client::read_state_key_file(state_key_file(state_dir)));
  client::PersonalState state(&store);
  model::ModelParameters kept = state.load();
  for (auto& t : kept.mutable_tensors()) {
    if (t.dtype != model::DType::kFloat32) continue;
    for (float& v : t.as_mutable<float>()) v += delta;
  }
  state.save(kept);
}


const std::string kFedPer = "[personalization]\npersonal = [\"fc2.*\"]\n";

// A running aggregator of two rounds of two clients with fc2 personal (FedPer), its state in <dir>/aggregator.
struct FedPerRun {
  TempDir dir;
  Pki pki;
  AggregatorOptions agg;
  std::unique_ptr<Process> aggregator;
  std::uint16_t port = 0;

  explicit FedPerRun(const std::string& name) : dir(name), pki(make_pki(dir.path() / "pki", 2)) {
    agg = fixed_cohort_options(dir.path(), pki, 2, 2);
    agg.extra_toml = kFedPer;
    aggregator = start_aggregator(write_aggregator_config(dir.path() / "aggregator.toml", agg),
                                  dir.path() / "aggregator.log");
    port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  }
};

// Waits for every client to exit, requiring each to exit 0 (its log shown when not).
void require_all_exit_ok(const std::vector<std::unique_ptr<Process>>& clients) {
  for (const auto& p : clients) {
    const auto code = p->wait_for_exit(120s);
    INFO(p->log_text());
    REQUIRE(code == 0);
  }
}

// One round of clients 1..n of `pki` (client i on shard i - 1 with 200 examples, its state in <dir>/client-i), each
// config with `toml` appended; returns once all have exited, requiring each to exit 0.
void run_clients_for_one_round(const fs::path& dir, const Pki& pki, std::uint16_t port, int n,
                               const std::string& toml) {
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= n; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.state_dir = dir / ("client-" + std::to_string(i));
    c.max_examples = 200;
    c.max_rounds = 1;
    c.extra_toml = toml;
    const fs::path config = write_client_config(dir / ("client-" + std::to_string(i) + ".toml"), c);
    clients.push_back(start_client(c.id, config, dir / ("client-" + std::to_string(i) + ".log")));
  }
  require_all_exit_ok(clients);
}
}  // namespace

TEST_CASE("personal tensors never leave the device: the bytes it sends do not depend on them",
          "[integration][personal]") {
  TempDir dir("personal");
  const Pki pki = make_pki(dir.path() / "pki", 1);
  const fs::path first = dir.path() / "client-first";
  one_round(dir.path(), pki, first, "first", kFedBn);
  const auto kept = personal_tensors(first);
  REQUIRE(kept.size() == 6);  // running_mean, running_var and num_batches_tracked of bn1 and bn2
  CHECK(kept.find("bn1.running_mean") != nullptr);

  // The same round, from the same global model and seeds, with the device's personal tensors as trained and
  // perturbed: every byte written to the TLS stream is the same.
  const fs::path same = dir.path() / "client-same", perturbed = dir.path() / "client-perturbed";
  copy_client_state(first, same);
  copy_client_state(first, perturbed);
  perturb_personal_tensors(perturbed, 0.5f);
  const std::string a = one_round(dir.path(), pki, same, "same", kFedBn);
  const std::string b = one_round(dir.path(), pki, perturbed, "perturbed", kFedBn);
  CHECK(a.size() > 4 * 80'000);  // the update of the CNN's ~80K federated parameters is in there
  const auto frames_a = frames_without_timing(a), frames_b = frames_without_timing(b);
  CHECK(frames_a.size() >= 3);  // hello, the update's header, its chunks
  CHECK(a.size() == b.size());
  for (std::size_t i = 0; i < std::min(frames_a.size(), frames_b.size()); ++i) {
    INFO("frame " << i);
    CHECK((frames_a[i] == frames_b[i]));  // not printed: binary
  }
  CHECK(frames_a.size() == frames_b.size());
  // The perturbed tensors were used and kept: the two devices' personal statistics still differ.
  CHECK(personal_tensors(same).find("bn1.running_mean")->data !=
        personal_tensors(perturbed).find("bn1.running_mean")->data);

  // The aggregator's global model has no BatchNorm statistics.
  const auto global = codec::read_model_file(dir.path() / "same" / "aggregator" / "checkpoint.sotto").model;
  CHECK(global.find("conv1.weight") != nullptr);
  CHECK(global.find("bn1.running_mean") == nullptr);
  CHECK(global.find("bn2.num_batches_tracked") == nullptr);
}

TEST_CASE("a personal head stays on each device and survives its restarts, and the global model has none",
          "[integration][personal]") {
  FedPerRun run("personal-head");
  auto& [dir, pki, agg, aggregator, port] = run;
  const std::string& fedper = kFedPer;
  for (int round = 1; round <= 2; ++round) {
    run_clients_for_one_round(dir.path(), pki, port, 2,
                              fedper + "[evaluation]\nlocal_fraction = 0.25\nreport_local = true\n");
    if (round == 1) {
      // Each device trained its own head; client 1's is marked so that its restart shows whether it was restored.
      const auto head1 = personal_tensors(dir.path() / "client-1"), head2 = personal_tensors(dir.path() / "client-2");
      REQUIRE(head1.size() == 2);
      CHECK(head1.find("fc2.weight")->data != head2.find("fc2.weight")->data);
      perturb_personal_tensors(dir.path() / "client-1", 100.0f);
    }
  }
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  // Restarted, client 1 trained the head it kept: its marked values are still there (one round of SGD moves them
  // by far less than 100); client 2's head never was marked.
  CHECK(personal_tensors(dir.path() / "client-1").find("fc2.bias")->as<float>()[0] > 50.0f);
  CHECK(personal_tensors(dir.path() / "client-2").find("fc2.bias")->as<float>()[0] < 50.0f);
  const auto global = codec::read_model_file(agg.state_dir / "checkpoint.sotto").model;
  CHECK(global.find("fc1.weight") != nullptr);
  CHECK(global.find("fc2.weight") == nullptr);
  CHECK(global.find("fc2.bias") == nullptr);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) {
    CHECK(r.at("status") == "completed");
    // Each device measured the global model and its own on the quarter of its examples it held out.
    INFO(r.dump());
    REQUIRE(r.contains("local_evaluation"));
    CHECK(r.at("local_evaluation").at("clients") == 2);
    CHECK(r.at("local_evaluation").at("examples") == 100);
    CHECK(r.at("examples") == 300);
    for (const char* which : {"global", "personal"}) {
      const double mean = r.at("local_evaluation").at(which).at("mean").get<double>();
      CHECK((mean >= 0 && mean <= 1));
    }
  }
}

TEST_CASE("a device whose kept personal head is not finite starts it again instead of diverging every round",
          "[integration][personal]") {
  FedPerRun run("personal-nan");
  auto& [dir, pki, agg, aggregator, port] = run;
  const std::string& fedper = kFedPer;
  for (int round = 1; round <= 2; ++round) {
    run_clients_for_one_round(dir.path(), pki, port, 2, fedper);
    if (round == 1) perturb_personal_tensors(dir.path() / "client-1", std::nanf(""));  // as a diverged run left it
  }
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  INFO(nlohmann::json(rounds).dump());
  CHECK(rounds[1].at("status") == "completed");
  CHECK(rounds[1].at("survivors") == 2);  // client 1 trained a fresh head and sent a finite update
  const auto head = personal_tensors(dir.path() / "client-1");
  REQUIRE(head.size() == 2);
  CHECK_FALSE(head.first_non_finite());  // and kept that one
}

TEST_CASE("Ditto and fine-tuning leave each device a personal model of its own, kept in its state store",
          "[integration][personal]") {
  for (const std::string adaptation : {"ditto_lambda = 0.5", "finetune_epochs = 1"}) {
    INFO(adaptation);
    TempDir dir("personal-model");
    const Pki pki = make_pki(dir.path() / "pki", 2);
    const std::string personalization = "[personalization]\n" + adaptation + "\n";
    AggregatorOptions agg = fixed_cohort_options(dir.path(), pki, 2, 2);
    agg.extra_toml = personalization;
    auto aggregator =
        start_aggregator(write_aggregator_config(dir.path() / "aggregator.toml", agg), dir.path() / "aggregator.log");
    const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());
    for (int round = 1; round <= 2; ++round) {  // restarted between rounds: Ditto goes on from the kept model
      run_clients_for_one_round(dir.path(), pki, port, 2, "");
    }
    REQUIRE(aggregator->wait_for_exit(60s) == 0);
    const auto global = codec::read_model_file(agg.state_dir / "checkpoint.sotto").model;
    const auto personal_model = [&](int i) {
      const fs::path state = dir.path() / ("client-" + std::to_string(i));
      client::StateStore store(state, client::read_state_key_file(state_key_file(state)));
      return client::PersonalState(&store).load_personal_model();
    };
    const auto one = personal_model(1), two = personal_model(2);
    REQUIRE(one.size() == global.size());
    CHECK_FALSE(one.layout_mismatch(global));
    CHECK(one.find("fc1.weight")->data != two.find("fc1.weight")->data);
    CHECK(one.find("fc1.weight")->data != global.find("fc1.weight")->data);
  }
}

TEST_CASE("in a secure round the devices' held-out accuracies arrive only as the secure sum's histograms",
          "[integration][personal][secagg]") {
  TempDir dir("accuracy-histogram");
  const Pki pki = make_pki(dir.path() / "pki", 3);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), pki, 2, 3);
  agg.extra_toml = "[secure_aggregation]\nenabled = true\nstep_deadline_s = 20\n";
  agg.evaluation_toml = "local_histogram_bins = 10\n";
  auto aggregator =
      start_aggregator(write_aggregator_config(dir.path() / "aggregator.toml", agg), dir.path() / "aggregator.log");
  const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  // Client 1 allows its figures in the clear, client 2 only in a secure sum, client 3 not at all.
  const std::vector<std::string> reports = {"true", "\"secure_sum\"", "false"};
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= 3; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 200;
    c.extra_toml = "[evaluation]\nlocal_fraction = 0.25\nreport_local = " + reports[i - 1] + "\n";
    const fs::path config = write_client_config(dir.path() / ("client-" + std::to_string(i) + ".toml"), c);
    clients.push_back(start_client(c.id, config, dir.path() / ("client-" + std::to_string(i) + ".log")));
  }
  require_all_exit_ok(clients);
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) {
    INFO(r.dump());
    CHECK(r.at("status") == "completed");
    REQUIRE(r.contains("local_evaluation"));
    const auto& e = r.at("local_evaluation");
    CHECK(e.at("source") == "secure_sum");
    CHECK(e.at("clients") == 2);  // clients 1 and 2; client 3's words were zeros
    CHECK_FALSE(e.contains("examples"));  // no device's own figures reached the aggregator
    for (const char* which : {"global", "personal"}) {
      const auto counts = e.at("histogram").at(which).get<std::vector<std::uint64_t>>();
      REQUIRE(counts.size() == 10);
      CHECK(std::accumulate(counts.begin(), counts.end(), std::uint64_t{0}) == 2);
      const double mean = e.at(which).at("mean").get<double>();
      CHECK((mean > 0 && mean < 1));
    }
  }
}

TEST_CASE("under distributed DP the accuracy histograms carry their own noise, charged on both sides",
          "[integration][personal][secagg][dp]") {
  TempDir dir("accuracy-histogram-dp");
  const Pki pki = make_pki(dir.path() / "pki", 3);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), pki, 1, 3);
  agg.extra_toml = "[secure_aggregation]\nenabled = true\nstep_deadline_s = 20\nbits = 16\n"
                   "[privacy]\nnoise_multiplier = 1.0\nclip_norm = 1.0\nmin_survivors = 3\n";
  agg.evaluation_toml = "local_histogram_bins = 10\nhistogram_noise_multiplier = 2.0\n";
  auto aggregator =
      start_aggregator(write_aggregator_config(dir.path() / "aggregator.toml", agg), dir.path() / "aggregator.log");
  const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= 3; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 100;
    c.state_dir = dir.path() / ("state-" + std::to_string(i));
    c.extra_toml = "[evaluation]\nlocal_fraction = 0.25\nreport_local = \"secure_sum\"\n";
    const fs::path config = write_client_config(dir.path() / ("client-" + std::to_string(i) + ".toml"), c);
    clients.push_back(start_client(c.id, config, dir.path() / ("client-" + std::to_string(i) + ".log")));
  }
  require_all_exit_ok(clients);
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 1);
  const auto& r = rounds[0];
  INFO(r.dump());
  CHECK(r.at("status") == "completed");
  const auto& e = r.at("local_evaluation");
  CHECK(e.at("source") == "secure_sum");
  CHECK(e.at("noise_stddev").get<double>() > 1);  // three shares of sigma = 2·sqrt(2)/sqrt(h) each
  CHECK(e.at("histogram").at("global").size() == 10);
  const auto& p = r.at("privacy");
  CHECK(p.at("accuracy_histogram").at("bins") == 10);
  CHECK(p.at("accuracy_histogram").at("noise_multiplier") == 2.0);
  // The round's epsilon is the update's and the histograms' together, as sotto-dp computes it, and above the
  // update's alone.
  auto sotto_dp = [&](const std::vector<std::string>& histograms) {
    std::vector<std::string> args{"epsilon", "--mechanism", "ddg", "--sampling-rate", "1", "--noise-multiplier", "1",
                                  "--steps", "1", "--delta", "1e-5", "--bits", "16", "--clip-norm", "1",
                                  "--clients", "3", "--honest", std::to_string(p.at("honest").get<std::uint32_t>()),
                                  "--dimension", std::to_string(p.at("dimension").get<std::uint64_t>())};
    args.insert(args.end(), histograms.begin(), histograms.end());
    const auto run = run_to_exit("sotto-dp", args, dir.path() / "sotto-dp.log");
    REQUIRE(run->exit_code() == 0);
    const std::string text = run->log_text();
    return nlohmann::json::parse(text.substr(text.rfind('{'))).at("epsilon").get<double>();
  };
  const double update_epsilon = sotto_dp({});
  CHECK(p.at("epsilon").get<double>() ==
        Approx(sotto_dp({"--histogram-bins", "10", "--histogram-noise-multiplier", "2"})).epsilon(1e-9));
  CHECK(p.at("epsilon").get<double>() > update_epsilon * 1.01);
  // Each device charged itself both mechanisms as well.
  for (int i = 1; i <= 3; ++i) {
    const auto ledger = read_ledger(dir.path() / ("state-" + std::to_string(i)));
    REQUIRE_FALSE(ledger.empty());
    CHECK(ledger.back().at("privacy").at("epsilon").get<double>() > update_epsilon * 1.01);
    CHECK(ledger.back().at("privacy").at("histogram_noise_multiplier").get<double>() == Approx(2.0).epsilon(1e-3));
  }
}

}  // namespace sotto::test
