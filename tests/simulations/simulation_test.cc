// sotto-sim end to end on tiny configs: reproducibility, seeds, Poisson cohorts, the executable, and a large
// registered population that must not cost a model per client.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/codec/model_file.h"
#include "common/secagg/update_vector.h"
#include "common/data/image_dataset.h"
#include "simulations/cohort_sampler.h"
#include "aggregator/coordinator_options.h"
#include "simulations/population.h"
#include "simulations/sim_config.h"
#include "simulations/simulation.h"
#include "simulations/tls_transport.h"
#include "tests/simulations/sim_test_helpers.h"

using namespace sotto;
using namespace sotto::sim_test;

namespace {

// Every dropped client's reason in a run, concatenated.
std::string drop_reasons(const std::vector<nlohmann::json>& rounds) {
  std::string all;
  for (const auto& r : rounds) {
    for (const auto& d : r["dropped"]) all += d["reason"].get<std::string>() + "\n";
  }
  return all;
}

double max_abs_difference(const model::ModelParameters& a, const model::ModelParameters& b) {
  double worst = 0;
  REQUIRE(a.size() == b.size());
  for (std::size_t t = 0; t < a.size(); ++t) {
    if (a.tensors()[t].dtype != model::DType::kFloat32) continue;
    const auto x = a.tensors()[t].as<float>();
    const auto y = b.tensors()[t].as<float>();
    for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(x[i]) - y[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("the same config and seed give identical rounds whatever the thread count") {
  auto a = tiny("same-a", {"threads=1"});
  auto b = tiny("same-b", {"threads=2"});
  sim::run_simulation(a);
  sim::run_simulation(b);
  const auto ra = read_rounds(a.output_dir);
  const auto rb = read_rounds(b.output_dir);
  REQUIRE(ra.size() == 2);
  REQUIRE(rb.size() == 2);
  for (std::size_t i = 0; i < ra.size(); ++i) {
    CHECK(ra[i]["test_accuracy"] == rb[i]["test_accuracy"]);
    CHECK(ra[i]["test_loss"] == rb[i]["test_loss"]);
    CHECK(ra[i]["mean_train_loss"] == rb[i]["mean_train_loss"]);
    CHECK(ra[i]["participants"] == rb[i]["participants"]);
    CHECK(ra[i].dump() == rb[i].dump());  // everything but the timings
  }
  CHECK(ra[0]["survivors"] == 4);
  CHECK(ra[1]["completed_rounds"] == 2);
  for (const char* f : {"config.toml", "rounds.jsonl", "rounds.csv", "partition.csv", "summary.json"}) {
    CHECK(std::filesystem::exists(a.output_dir / f));
  }
  std::filesystem::remove_all(a.output_dir);
  std::filesystem::remove_all(b.output_dir);
}

TEST_CASE("a different seed gives different rounds") {
  auto a = tiny("seed-a", {"seed=1"});
  auto b = tiny("seed-b", {"seed=2"});
  sim::run_simulation(a);
  sim::run_simulation(b);
  const auto ra = read_rounds(a.output_dir);
  const auto rb = read_rounds(b.output_dir);
  REQUIRE(ra.size() == 2);
  REQUIRE(rb.size() == 2);
  CHECK(ra[0]["participants"] != rb[0]["participants"]);
  CHECK(ra[1]["test_loss"] != rb[1]["test_loss"]);
  std::filesystem::remove_all(a.output_dir);
  std::filesystem::remove_all(b.output_dir);
}

TEST_CASE("uniform cohorts are distinct and poisson cohorts vary in size") {
  auto u = tiny("sampler-u", {"population=1000", "cohort_size=50"});
  std::set<std::uint64_t> sizes;
  for (std::uint64_t r = 1; r <= 20; ++r) {
    const auto c = sim::sample_cohort(u, r);
    CHECK(c.size() == 50);
    CHECK(std::set<std::uint64_t>(c.begin(), c.end()).size() == 50);
    CHECK(c.back() < 1000);
  }
  auto p = tiny("sampler-p", {"population=1000", "cohort_size=50", "sampling=poisson"});
  double total = 0;
  for (std::uint64_t r = 1; r <= 200; ++r) {
    const auto c = sim::sample_cohort(p, r);
    sizes.insert(c.size());
    total += static_cast<double>(c.size());
  }
  CHECK(sizes.size() > 5);
  CHECK(total / 200 == Approx(50).epsilon(0.1));
}

TEST_CASE("poisson sampling runs rounds with the sampled count") {
  auto c = tiny("poisson", {"sampling=poisson", "sampling_rate=0.3"});
  const auto s = sim::run_simulation(c);
  CHECK(s.rounds == 2);
  const auto rounds = read_rounds(c.output_dir);
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) CHECK(r["cohort"] == r["sampled"]);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("distributed DP in simulation is amplified by poisson sampling against the models and not against the aggregator") {
  auto c = tiny("ddp", {"population=30", "sampling=poisson", "sampling_rate=0.3", "rounds=3",
                        "secure_aggregation.enabled=true", "secure_aggregation.bits=16", "privacy.noise_multiplier=1.0",
                        "privacy.clip_norm=1.0", "privacy.min_survivors=3"});
  REQUIRE(c.privacy.mode == aggregator::PrivacyMode::kDistributed);  // the default once a noise level is set
  sim::run_simulation(c);
  const auto rounds = read_rounds(c.output_dir);
  REQUIRE(rounds.size() >= 3);
  double last = 0, last_released = 0;
  for (const auto& r : rounds) {
    INFO(r.dump());
    const auto& p = r.at("privacy");
    CHECK(p.at("mode") == "distributed");
    CHECK(p.at("sampling_rate").get<double>() == Approx(0.3));
    CHECK(p.at("sampling").get<std::string>().find("poisson") != std::string::npos);
    if (!p.at("charged").get<bool>()) continue;
    const double e = p.at("epsilon"), released = p.at("epsilon_released");
    CHECK(released < e);  // amplification holds only against those who do not see who took part
    CHECK(e > last);
    CHECK(released >= last_released);
    last = e;
    last_released = released;
  }
  CHECK(last > 0);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("a simulation whose privacy budget runs out before rounds.total stops cleanly and says why") {
  // With z = 1 and q = 0.3 the rounds cost 3.557 then about 1.36 each (delta 1e-5): a budget of 5 allows two.
  const std::vector<std::string> o = {"population=30", "sampling=poisson", "sampling_rate=0.3", "rounds=40",
                                      "secure_aggregation.enabled=true", "secure_aggregation.bits=16",
                                      "privacy.noise_multiplier=1.0", "privacy.clip_norm=1.0", "privacy.min_survivors=3"};
  auto with_budget = [&](const std::string& name, const std::string& epsilon) {
    auto options = o;
    options.push_back("privacy.target_epsilon=" + epsilon);
    return tiny(name, options);
  };
  auto c = with_budget("budget-stop", "5");
  const auto s = sim::run_simulation(c);
  CHECK(s.rounds == 2);
  CHECK_THAT(s.stopped_by_budget, Catch::Contains("round 3 would bring the epsilon spent to"));
  const auto summary = nlohmann::json::parse(std::ifstream(c.output_dir / "summary.json"));
  CHECK(summary.at("stopped_by_budget").get<std::string>() == s.stopped_by_budget);
  CHECK(std::filesystem::exists(c.output_dir / "final_model.sotto"));
  std::filesystem::remove_all(c.output_dir);

  auto none = with_budget("budget-none", "3");
  CHECK_THROWS_WITH(sim::run_simulation(none), Catch::Contains("the privacy budget allows no round") &&
                                                   Catch::Contains("privacy.target_epsilon = 3"));
  std::filesystem::remove_all(none.output_dir);
}

TEST_CASE("adaptive clipping in simulation grows a clip norm that clips every update, round after round") {
  // Every update after an epoch of SGD is far longer than 10^-4 (and the model, moved that little, stays where it
  // was): every bit says "clipped" (b_bar near 0, its noise 1.2/12 with twelve clients expected, all adding noise
  // shares), so each completed round raises the clip norm by about exp(0.1).
  auto c = tiny("adaptive", {"population=40", "sampling=poisson", "sampling_rate=0.3", "rounds=4",
                             "secure_aggregation.enabled=true", "secure_aggregation.bits=16",
                             "privacy.noise_multiplier=1.0", "privacy.clip_norm=0.0001", "privacy.min_survivors=6",
                             "privacy.adaptive_clipping=true", "privacy.clipped_count_stddev=1.2"});
  sim::run_simulation(c);
  const auto rounds = read_rounds(c.output_dir);
  double last_clip = 0;
  int completed = 0;
  for (const auto& r : rounds) {
    INFO(r.dump());
    if (r.at("status") != "completed") continue;
    ++completed;
    const auto& p = r.at("privacy");
    const double clip = p.at("clip_norm");
    const auto& a = p.at("adaptive_clipping");
    CHECK(clip > last_clip);
    CHECK(a.at("unclipped_fraction").get<double>() < 0.5);
    CHECK(a.at("next_clip_norm").get<double>() > clip);
    last_clip = clip;
  }
  CHECK(completed >= 3);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("local DP in simulation claims no amplification: both epsilons are one client's own update's") {
  auto c = tiny("ldp", {"population=30", "sampling=poisson", "sampling_rate=0.3", "rounds=2",
                        "secure_aggregation.enabled=true", "secure_aggregation.bits=16", "privacy.mode=\"local\"",
                        "privacy.noise_multiplier=1.0", "privacy.clip_norm=1.0", "privacy.min_survivors=3"});
  REQUIRE(c.privacy.mode == aggregator::PrivacyMode::kLocal);
  sim::run_simulation(c);
  const auto rounds = read_rounds(c.output_dir);
  REQUIRE(rounds.size() >= 2);
  double last = 0;
  for (const auto& r : rounds) {
    INFO(r.dump());
    const auto& p = r.at("privacy");
    CHECK(p.at("mode") == "local");
    CHECK(p.at("honest") == 1);
    CHECK(p.at("skipped_draws") == 0);  // a draw too small to run sends no client's update
    if (!p.at("charged").get<bool>()) continue;
    CHECK(p.at("epsilon_released").get<double>() == Approx(p.at("epsilon").get<double>()));
    CHECK(p.at("epsilon").get<double>() > last);
    last = p.at("epsilon");
  }
  CHECK(last > 0);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("the sotto-sim executable applies --set and writes its outputs") {
  const auto dir = out_dir("cli");
  const std::string cmd = std::string(SOTTO_BIN_DIR) +
                          "/sotto-sim --set population=20 --set cohort_size=4 --set rounds=1 "
                          "--set data.max_examples_per_client=30 --set evaluation.max_examples=100 --set plots=false "
                          "--set data.partition=dirichlet --set data.alpha=0.5 --output " +
                          dir.string() + " 2>" + dir.string() + ".log";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream cfg(dir / "config.toml");
  const std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("partition = 'dirichlet'") || Catch::Contains("partition = \"dirichlet\""));
  const auto summary = nlohmann::json::parse(std::ifstream(dir / "summary.json"));
  CHECK(summary["rounds"] == 1);
  CHECK(summary["final_accuracy"].get<double>() > 0);
  const std::string bad = std::string(SOTTO_BIN_DIR) + "/sotto-sim --set cohort_size=40 --set population=20 --output " +
                          dir.string() + " 2>" + dir.string() + ".err";
  CHECK(std::system(bad.c_str()) != 0);
  std::ifstream err(dir.string() + ".err");
  const std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK_THAT(msg, Catch::Contains("cohort_size"));
  std::filesystem::remove_all(dir);
  std::filesystem::remove(dir.string() + ".log");
  std::filesystem::remove(dir.string() + ".err");
}

TEST_CASE("100000 registered clients run a round without a model per client") {
  auto c = sim::load_sim_config("", {"population=100000", "cohort_size=10", "rounds=1",
                                     "data.max_examples_per_client=20", "evaluation.max_examples=200", "plots=false",
                                     "threads=2"},
                                out_dir("large"));
  const auto s = sim::run_simulation(c);
  CHECK(s.rounds == 1);
  const auto rounds = read_rounds(c.output_dir);
  REQUIRE(rounds.size() == 1);
  CHECK(rounds[0]["survivors"] == 10);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double peak_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
  INFO("peak RSS " << peak_mib << " MiB");
  CHECK(peak_mib < 1024.0);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("secure aggregation in memory is reproducible and lands next to plain FedAvg") {
  // IID shards of equal size: FedAvg's example weights are equal, so the secure round's unweighted mean of the
  // quantized updates differs from FedAvg only by the rounding (one step of 1/scale per client).
  auto plain = tiny("secure-plain", {"cohort_size=5"});
  auto a = tiny("secure-a", {"cohort_size=5", "secure_aggregation.enabled=true"});
  auto b = tiny("secure-b", {"cohort_size=5", "secure_aggregation.enabled=true", "threads=1"});
  sim::run_simulation(plain);
  sim::run_simulation(a);
  sim::run_simulation(b);
  const auto ra = read_rounds(a.output_dir);
  const auto rb = read_rounds(b.output_dir);
  REQUIRE(ra.size() == 2);
  for (std::size_t i = 0; i < ra.size(); ++i) CHECK(ra[i].dump() == rb[i].dump());
  CHECK(ra[0]["status"] == "completed");
  CHECK(ra[0]["secagg"]["n"] == 5);
  CHECK(ra[0]["secagg"]["survivors"]["unmasked"] == 5);
  CHECK(ra[0]["secagg"]["bytes_in"]["masked_input"].get<std::uint64_t>() > 0);
  CHECK(file_bytes(a.output_dir / "final_model.sotto") == file_bytes(b.output_dir / "final_model.sotto"));
  const auto secure_model = codec::read_model_file(a.output_dir / "final_model.sotto").model;
  const auto plain_model = codec::read_model_file(plain.output_dir / "final_model.sotto").model;
  const double diff = max_abs_difference(secure_model, plain_model);
  INFO("largest parameter difference, secure vs plain: " << diff);
  CHECK(diff > 0);  // quantized, so not bit-identical
  CHECK(diff < 1e-5);
  for (const auto& c : {plain, a, b}) std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("simulated dropouts at every secure-aggregation step are recovered from") {
  auto c = tiny("secure-dropouts", {"population=30", "cohort_size=10", "rounds=3", "secure_aggregation.enabled=true",
                                    "secure_aggregation.complete_graph=true", "dropout.advertise_keys=0.1",
                                    "dropout.share_keys=0.1", "dropout.update=0.1", "dropout.unmask=0.2"});
  const auto s = sim::run_simulation(c);
  CHECK(s.rounds == 3);
  const auto rounds = read_rounds(c.output_dir);
  const std::string reasons = drop_reasons(rounds);
  INFO(reasons);
  for (const char* step : {"before advertising its keys", "before sharing its keys", "before sending its masked input",
                           "before answering the unmask request"}) {
    CHECK_THAT(reasons, Catch::Contains(step));
  }
  std::uint64_t completed_with_dropouts = 0;
  for (const auto& r : rounds) {
    if (r["status"] == "completed" && !r["dropped"].empty()) {
      ++completed_with_dropouts;
      CHECK(r["secagg"]["survivors"]["unmasked"].get<std::uint32_t>() >= r["secagg"]["t"].get<std::uint32_t>());
      CHECK(r["survivors"].get<std::uint32_t>() < 10);
    }
  }
  CHECK(completed_with_dropouts > 0);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("plain rounds lose the clients that drop before their update and go on") {
  auto c = tiny("plain-dropouts", {"population=30", "cohort_size=10", "rounds=3", "dropout.update=0.3"});
  const auto s = sim::run_simulation(c);
  CHECK(s.rounds == 3);
  const auto rounds = read_rounds(c.output_dir);
  CHECK_THAT(drop_reasons(rounds), Catch::Contains("simulated dropout before sending its update"));
  std::uint64_t survivors = 0;
  for (const auto& r : rounds) {
    survivors += r["survivors"].get<std::uint64_t>();
    CHECK(r["survivors"].get<std::uint64_t>() + r["dropped"].size() == 10);
  }
  CHECK(survivors < 30);
  std::filesystem::remove_all(c.output_dir);
}

TEST_CASE("two MPI ranks give the same rounds and model as one process") {
  // Secure aggregation and dropouts on, so the whole round pipeline is exercised after the ranks' training.
  const std::string args =
      " --set population=24 --set cohort_size=7 --set rounds=2 --set data.max_examples_per_client=40"
      " --set evaluation.max_examples=200 --set plots=false --set threads=1 --set data.partition=dirichlet"
      " --set secure_aggregation.enabled=true --set dropout.update=0.1";
  const auto one = out_dir("mpi-one");
  const auto two = out_dir("mpi-two");
  const std::string sim = std::string(SOTTO_BIN_DIR) + "/sotto-sim";
  REQUIRE(std::system((sim + args + " --output " + one.string() + " 2>" + one.string() + ".log").c_str()) == 0);
  const std::string mpirun = std::string(SOTTO_MPIEXEC) + " --allow-run-as-root --oversubscribe -n 2 ";
  const int status = std::system((mpirun + sim + args + " --output " + two.string() + " >" + two.string() + ".log 2>&1").c_str());
  INFO(file_bytes(two.string() + ".log"));
  REQUIRE(status == 0);
  CHECK(nlohmann::json::parse(std::ifstream(two / "summary.json"))["ranks"] == 2);
  const auto r1 = read_rounds(one);
  const auto r2 = read_rounds(two);
  REQUIRE(r1.size() >= 2);
  REQUIRE(r1.size() == r2.size());
  for (std::size_t i = 0; i < r1.size(); ++i) CHECK(r1[i].dump() == r2[i].dump());
  CHECK(file_bytes(one / "final_model.sotto") == file_bytes(two / "final_model.sotto"));

  // A rank that fails takes the whole job down with a message instead of leaving the others waiting.
  const int bad = std::system((mpirun + sim + args + " --set data.dir=/nonexistent --output " + two.string() + " >" +
                               two.string() + ".err 2>&1").c_str());
  CHECK(bad != 0);
  CHECK_THAT(file_bytes(two.string() + ".err"), Catch::Contains("/nonexistent"));
  for (const auto& d : {one, two}) {
    std::filesystem::remove_all(d);
    std::filesystem::remove(d.string() + ".log");
  }
  std::filesystem::remove(two.string() + ".err");
}

TEST_CASE("the TLS transport gives the in-memory run's model over real sockets") {
  const std::vector<std::string> plain = {"population=8", "cohort_size=3", "data.max_examples_per_client=40",
                                          "data.partition=dirichlet", "threads=1"};
  auto memory = tiny("tls-memory", plain);
  std::vector<std::string> over_tls = plain;
  over_tls.push_back("transport=tls");
  auto tls = tiny("tls-tls", over_tls);
  sim::run_simulation(memory);
  const auto s = sim::run_simulation_over_tls(tls);
  CHECK(s.rounds == 2);
  CHECK(std::filesystem::exists(tls.output_dir / "tls" / "aggregator.log"));
  CHECK(nlohmann::json::parse(std::ifstream(tls.output_dir / "summary.json"))["transport"] == "tls");
  const auto rm = read_rounds(memory.output_dir);
  const auto rt = read_rounds(tls.output_dir);
  REQUIRE(rm.size() == 2);
  REQUIRE(rt.size() == 2);
  for (std::size_t i = 0; i < rm.size(); ++i) {
    CHECK(rm[i]["test_loss"] == rt[i]["test_loss"]);
    CHECK(rm[i]["mean_train_loss"] == rt[i]["mean_train_loss"]);
    auto pm = rm[i]["participants"].get<std::vector<std::string>>();
    auto pt = rt[i]["participants"].get<std::vector<std::string>>();  // in arrival order over TLS
    std::sort(pm.begin(), pm.end());
    std::sort(pt.begin(), pt.end());
    CHECK(pm == pt);
  }
  CHECK(file_bytes(memory.output_dir / "final_model.sotto") == file_bytes(tls.output_dir / "final_model.sotto"));

  // Secure rounds, with a 24-bit modulus: real clients draw their rounding coins from OpenSSL's CSPRNG, so the
  // models agree up to the quantization, not bit for bit; the masked inputs travel packed at 24 bits.
  const std::vector<std::string> secure = {"population=8", "threads=1", "secure_aggregation.enabled=true",
                                           "secure_aggregation.bits=24"};
  auto secure_memory = tiny("tls-secure-memory", secure);
  std::vector<std::string> secure_over_tls = secure;
  secure_over_tls.push_back("transport=tls");
  auto secure_tls = tiny("tls-secure-tls", secure_over_tls);
  sim::run_simulation(secure_memory);
  sim::run_simulation_over_tls(secure_tls);
  const auto memory_model = codec::read_model_file(secure_memory.output_dir / "final_model.sotto").model;
  const double diff =
      max_abs_difference(memory_model, codec::read_model_file(secure_tls.output_dir / "final_model.sotto").model);
  INFO("largest parameter difference: " << diff);
  CHECK(diff < 1e-3);
  const auto first = read_rounds(secure_tls.output_dir)[0];
  CHECK(first["secagg"]["survivors"]["unmasked"] == 4);
  const double plain_upload = 4.0 * static_cast<double>(secagg::floating_length(memory_model)) * 4;
  const double masked_upload = first["secagg"]["bytes_in"]["masked_input"].get<double>();
  INFO("masked-input bytes of 4 clients: " << masked_upload << ", at 32 bits " << plain_upload);
  CHECK(masked_upload < 0.76 * plain_upload);
  CHECK(masked_upload > 0.75 * plain_upload);
  for (const auto& c : {memory, tls, secure_memory, secure_tls}) std::filesystem::remove_all(c.output_dir);
}

namespace {

// One experiment run in memory and over TLS (output dirs NAME-memory and NAME-tls), and each run's rounds.
struct TwoTransports {
  sim::SimConfig memory, tls;
  std::vector<nlohmann::json> memory_rounds, tls_rounds;
};

TwoTransports run_both_transports(const std::string& name, std::vector<std::string> options) {
  TwoTransports r;
  r.memory = tiny(name + "-memory", options);
  options.push_back("transport=tls");
  r.tls = tiny(name + "-tls", options);
  sim::run_simulation(r.memory);
  sim::run_simulation_over_tls(r.tls);
  r.memory_rounds = read_rounds(r.memory.output_dir);
  r.tls_rounds = read_rounds(r.tls.output_dir);
  return r;
}

// How many clients the rounds dropped in all.
std::size_t total_dropped(const std::vector<nlohmann::json>& rounds) {
  std::size_t n = 0;
  for (const auto& r : rounds) n += r["dropped"].size();
  return n;
}

// Each round's dropped client ids, sorted.
std::vector<std::vector<std::string>> dropped_ids(const std::vector<nlohmann::json>& rounds) {
  std::vector<std::vector<std::string>> out;
  for (const auto& r : rounds) {
    std::vector<std::string> ids;
    for (const auto& d : r["dropped"]) ids.push_back(d["client"].get<std::string>());
    std::sort(ids.begin(), ids.end());
    out.push_back(ids);
  }
  return out;
}

}  // namespace

TEST_CASE("a TorchScript model with dropout gives one model in memory on two threads and over TLS") {
  const auto file = out_dir("torchscript-model") / "fashion_mlp.pt";
  std::filesystem::create_directories(file.parent_path());
  const std::string export_command = std::string("/usr/bin/python3 ") + SOTTO_SOURCE_DIR +
                                     "/models/export_model.py export fashion_mlp " + file.string();
  REQUIRE(std::system(export_command.c_str()) == 0);
  const std::vector<std::string> o = {"population=8", "cohort_size=3", "data.max_examples_per_client=60",
                                      "model.torchscript=\"" + file.string() + "\""};
  const auto runs = run_both_transports("torchscript", o);
  REQUIRE(runs.memory_rounds.size() == 2);
  CHECK(runs.memory_rounds[1]["test_accuracy"].get<double>() > 0.3);
  CHECK(file_bytes(runs.memory.output_dir / "final_model.sotto") ==
        file_bytes(runs.tls.output_dir / "final_model.sotto"));
  const auto model = codec::read_model_file(runs.memory.output_dir / "final_model.sotto").model;
  CHECK(model.find("head.weight") != nullptr);
}

TEST_CASE("simulated dropouts over TLS drop the same clients at the same steps as in memory") {
  // Plain rounds: the same clients vanish before their update, and the same model comes out, bit for bit.
  const auto plain = run_both_transports("tls-drop", {"population=8", "cohort_size=4", "data.max_examples_per_client=40",
                                                      "threads=1", "dropout.update=0.3", "seed=3"});
  REQUIRE(plain.memory_rounds.size() == plain.tls_rounds.size());
  CHECK(total_dropped(plain.memory_rounds) > 0);  // the seed makes some clients vanish
  CHECK(dropped_ids(plain.memory_rounds) == dropped_ids(plain.tls_rounds));
  CHECK(file_bytes(plain.memory.output_dir / "final_model.sotto") ==
        file_bytes(plain.tls.output_dir / "final_model.sotto"));

  // Secure rounds with a vanishing rate at every step: the same clients drop, at the same steps (the survivors of
  // each step agree), and the models agree up to the rounding.
  const auto secure = run_both_transports(
      "tls-drop-secure", {"population=12", "cohort_size=6", "threads=1", "seed=5", "secure_aggregation.enabled=true",
                          "secure_aggregation.complete_graph=true", "dropout.advertise_keys=0.1",
                          "dropout.share_keys=0.1", "dropout.update=0.1", "dropout.unmask=0.1"});
  const auto& sm = secure.memory_rounds;
  const auto& st = secure.tls_rounds;
  REQUIRE(sm.size() == st.size());
  CHECK(total_dropped(sm) > 0);
  const auto dropped_memory = dropped_ids(sm), dropped_tls = dropped_ids(st);
  std::size_t completed = 0;
  for (std::size_t i = 0; i < sm.size(); ++i) {
    INFO("round " << i + 1 << ": in memory " << sm[i]["secagg"].dump() << "\nover TLS " << st[i]["secagg"].dump());
    CHECK(sm[i]["status"] == st[i]["status"]);
    CHECK(sm[i]["secagg"]["survivors"] == st[i]["secagg"]["survivors"]);
    // Once a round is abandoned, who else is listed as dropped depends on timing over TLS: clients that find too
    // few shares abort on their own and disconnect, before or after the abandonment.
    if (sm[i]["status"] == "completed") {
      ++completed;
      CHECK(dropped_memory[i] == dropped_tls[i]);
    }
  }
  CHECK(completed == 2);
  const double diff = max_abs_difference(codec::read_model_file(secure.memory.output_dir / "final_model.sotto").model,
                                         codec::read_model_file(secure.tls.output_dir / "final_model.sotto").model);
  INFO("largest parameter difference: " << diff);
  CHECK(diff < 1e-3);
  for (const auto* r : {&plain, &secure}) {
    std::filesystem::remove_all(r->memory.output_dir);
    std::filesystem::remove_all(r->tls.output_dir);
  }
}

TEST_CASE("data.num_shards makes clients share shards: the data sampled with replacement") {
  auto c = tiny("shards", {"population=50", "data.num_shards=5", "data.max_examples_per_client=0"});
  const auto train = data::load_fashion_mnist(c.data_dir, data::Split::kTrain);
  const sim::Population p(c, train);
  CHECK(p.shards().size() == 5);
  const auto a = p.examples(2);
  const auto b = p.examples(7);
  CHECK(std::vector<std::uint32_t>(a.begin(), a.end()) == std::vector<std::uint32_t>(b.begin(), b.end()));
  CHECK(a.size() == 12000);
}

TEST_CASE("Poisson draws too small for secure aggregation are skipped and the run goes on") {
  auto c = tiny("poisson-secure", {"sampling=poisson", "sampling_rate=0.1", "secure_aggregation.enabled=true"});
  const auto s = sim::run_simulation(c);
  CHECK(s.rounds == 2);
  CHECK(s.small_draws > 0);
  const auto rounds = read_rounds(c.output_dir);
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) CHECK(r["secagg"]["n"].get<std::uint32_t>() >= 3);
  CHECK(nlohmann::json::parse(std::ifstream(c.output_dir / "summary.json"))["small_draws"] == s.small_draws);
  std::filesystem::remove_all(c.output_dir);
}
