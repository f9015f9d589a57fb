// The C API end to end: examples/c_app, a C program linked only against libsotto_client.so, and
// examples/python_app/sotto_app.py, Debian's python3 binding the library with ctypes, each train fashion_linear with
// their own SGD and take part together in secure rounds against the real sotto-aggregator over mutual TLS; and the
// library exports the C API's symbols and nothing else.
#include <catch2/catch.hpp>
#include <sstream>

#include "tests/support/test_support.h"

namespace sotto::test {

namespace {

std::string library() { return (fs::path(SOTTO_BIN_DIR).parent_path() / "lib" / "libsotto_client.so").string(); }

// App i's client config (its own state directory; the app records the person's opt-in itself).
fs::path app_config(const TempDir& dir, const Pki& pki, int i, std::uint16_t port, const std::string& extra_toml = "") {
  ClientOptions o = mtls_client_options(pki, i, port);
  o.state_dir = dir / ("app-" + std::to_string(i));
  o.consent_grant.clear();
  o.save_local_models = false;
  o.extra_toml = extra_toml;
  return write_client_config(dir / ("app-" + std::to_string(i) + ".toml"), o);
}

}  // namespace

TEST_CASE("two C apps and a Python ctypes app train fashion_linear through libsotto_client.so in secure rounds",
          "[integration][c_api]") {
  TempDir dir("c-api");
  const Pki pki = make_pki(dir / "pki", 3);
  auto agg = fixed_cohort_options(dir.path(), pki, 2, 3);
  agg.evaluate = true;
  agg.eval_max_examples = 1000;
  agg.extra_toml = "[model]\narchitecture = \"fashion_linear\"\n"
                   "[secure_aggregation]\nenabled = true\nstep_deadline_s = 20\n[privacy]\nclip_norm = 100.0\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());

  std::vector<std::unique_ptr<Process>> apps;
  for (int i = 1; i <= 3; ++i) {
    // The config's thread cap, which the C apps replace with their own (sotto_client_set_limits).
    const fs::path config = app_config(dir, pki, i, port, "[training]\nthreads = 4\n");
    const fs::path state_dir = dir / ("app-" + std::to_string(i));
    const bool python = i == 3;
    std::vector<std::string> argv{bin_path("c_app").string()};
    if (python) {
      argv = {"/usr/bin/python3", std::string(SOTTO_SOURCE_DIR) + "/examples/python_app/sotto_app.py", library()};
    }
    const std::vector<std::string> rest{config.string(), state_key_file(state_dir).string(),
                                        "/usr/share/datasets/fashion-mnist", std::to_string(i - 1), "3",
                                        python ? "100" : "300"};
    argv.insert(argv.end(), rest.begin(), rest.end());
    apps.push_back(std::make_unique<Process>("app-" + std::to_string(i), argv,
                                             dir / ("app-" + std::to_string(i) + ".log")));
  }
  for (int i = 1; i <= 3; ++i) {
    auto& app = apps[static_cast<std::size_t>(i - 1)];
    const auto code = app->wait_for_exit(300s);
    INFO(app->log_text());
    REQUIRE(code == 0);
    const std::string log = app->log_text();
    const std::string examples = i == 3 ? "100" : "300";
    CHECK_THAT(log, Catch::Contains("rounds contributed 2") && Catch::Contains("ledger: 2 entries"));
    CHECK_THAT(log, Catch::Contains("ledger round 1 completed examples " + examples) &&
                        Catch::Contains("ledger round 2 completed examples " + examples));
    CHECK_THAT(log, Catch::Contains("secure 1"));
    if (i < 3) CHECK_THAT(log, Catch::Contains("training threads cap 1"));  // sotto_client_set_limits's
  }
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) {
    INFO(r.dump());
    CHECK(r["status"] == "completed");
    CHECK(r.contains("secagg"));
  }
  // The C apps' own SGD moved the global model: well above chance (0.1) on the test set.
  CHECK(rounds.back()["test_accuracy"].get<double>() > 0.4);
}

TEST_CASE("a C app keeps the plan's personal tensors and reports its held-out accuracy through the C API",
          "[integration][c_api][personal]") {
  TempDir dir("c-api-personal");
  const Pki pki = make_pki(dir / "pki", 2);
  auto agg = fixed_cohort_options(dir.path(), pki, 2, 2);
  agg.extra_toml = "[model]\narchitecture = \"fashion_linear\"\n[personalization]\npersonal = [\"fc.bias\"]\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  std::vector<std::unique_ptr<Process>> apps;
  for (int i = 1; i <= 2; ++i) {
    const fs::path config = app_config(dir, pki, i, port, "[evaluation]\nreport_local = true\n");
    const fs::path key = state_key_file(dir / ("app-" + std::to_string(i)));
    apps.push_back(std::make_unique<Process>(
        "app-" + std::to_string(i),
        std::vector<std::string>{bin_path("c_app").string(), config.string(), key.string(),
                                 "/usr/share/datasets/fashion-mnist", std::to_string(i - 1), "2", "300", "60"},
        dir / ("app-" + std::to_string(i) + ".log")));
  }
  for (auto& app : apps) {
    const auto code = app->wait_for_exit(300s);
    const std::string log = app->log_text();
    INFO(log);
    REQUIRE(code == 0);
    CHECK_THAT(log, Catch::Contains("c_app: personal tensor fc.bias"));
    CHECK_THAT(log, !Catch::Contains("c_app: personal tensor fc.weight"));
    CHECK_THAT(log, Catch::Contains("ledger round 2 completed examples 240"));  // the 60 held out are not trained on
  }
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) {
    INFO(r.dump());
    REQUIRE(r.contains("local_evaluation"));
    CHECK(r["local_evaluation"]["clients"] == 2);
    CHECK(r["local_evaluation"]["examples"] == 120);
  }
  // Each app's own SGD on its examples lifts its held-out accuracy above the model it received.
  const auto& last = rounds.back()["local_evaluation"];
  CHECK(last["personal"]["mean"].get<double>() > last["global"]["mean"].get<double>());
}

TEST_CASE("C apps whose library trains a TorchScript model on the examples they hand it take part in rounds and "
          "run the person's model", "[integration][c_api][torchscript]") {
  TempDir dir("c-api-model");
  const Pki pki = make_pki(dir / "pki", 2);
  const fs::path model = export_torchscript(dir.path(), "fashion_mlp");
  auto agg = fixed_cohort_options(dir.path(), pki, 2, 2);
  agg.evaluate = true;
  agg.extra_toml = "[model]\ntorchscript = \"" + model.string() + "\"\n[personalization]\npersonal = [\"head.*\"]\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  std::vector<std::unique_ptr<Process>> apps;
  for (int i = 1; i <= 2; ++i) {
    const fs::path config = app_config(dir, pki, i, port, "[model]\ntorchscript = \"" + model.string() + "\"\n");
    const fs::path key = state_key_file(dir / ("app-" + std::to_string(i)));
    apps.push_back(std::make_unique<Process>(
        "app-" + std::to_string(i),
        std::vector<std::string>{bin_path("c_model_app").string(), config.string(), key.string(),
                                 "/usr/share/datasets/fashion-mnist", std::to_string(i - 1), "2", "300"},
        dir / ("app-" + std::to_string(i) + ".log")));
  }
  for (int i = 1; i <= 2; ++i) {
    auto& app = apps[static_cast<std::size_t>(i - 1)];
    const auto code = app->wait_for_exit(300s);
    const std::string log = app->log_text();
    INFO(log);
    REQUIRE(code == 0);
    CHECK_THAT(log, Catch::Contains("rounds contributed 2"));
    // The library's model, trained on the app's 300 examples with the head kept on the device, well above chance.
    const auto at = log.find("accuracy ");
    const auto after = log.find("after opting out: accuracy ");
    REQUIRE((at != std::string::npos && after != std::string::npos));
    const double trained = std::stod(log.substr(at + 9));
    CHECK(trained > 0.4);
    CHECK(std::stod(log.substr(after + 27)) < trained);  // the initial weights: what it learnt is gone
    CHECK_FALSE(fs::exists(dir / ("app-" + std::to_string(i)) / "personal-tensors.sotto.sealed"));  // opted out
  }
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) CHECK(r["status"] == "completed");
}

TEST_CASE("a C app's path to the LibTorch module is the one the library loads", "[integration][c_api][torchscript]") {
  TempDir dir("c-api-runtime");
  const Pki pki = make_pki(dir / "pki", 1);
  auto agg = fixed_cohort_options(dir.path(), pki, 1, 1);
  agg.extra_toml = "[model]\narchitecture = \"fashion_linear\"\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  const fs::path config = app_config(dir, pki, 1, port, "[model]\narchitecture = \"fashion_linear\"\n");
  Process app("app-1",
              {bin_path("c_model_app").string(), config.string(), state_key_file(dir / "app-1").string(),
               "/usr/share/datasets/fashion-mnist", "0", "1", "50", "/nowhere/libsotto_torch_runtime.so"},
              dir / "app-1.log");
  CHECK(app.wait_for_exit(120s) == 1);
  CHECK_THAT(app.log_text(), Catch::Contains("SOTTO_ERROR_TRAINING") &&
                                 Catch::Contains("cannot load LibTorch from /nowhere/libsotto_torch_runtime.so"));
}

TEST_CASE("libsotto_client.so exports only the sotto_ C API under a versioned SONAME", "[integration][c_api]") {
  TempDir dir("c-api-symbols");
  REQUIRE(fs::exists(library()));
  const auto nm = run_to_exit("/usr/bin/nm", {"-D", "--defined-only", library()}, dir / "nm.txt");
  REQUIRE(nm->exit_code() == 0);
  std::istringstream lines(read_file(dir / "nm.txt"));
  std::string address, type, name;
  int exported = 0;
  while (lines >> address >> type >> name) {
    INFO(name);
    const bool version_node = type == "A" && name == "SOTTO_CLIENT_0";
    CHECK((name.rfind("sotto_", 0) == 0 || version_node));
    exported += name.rfind("sotto_", 0) == 0;
  }
  CHECK(exported >= 15);
  const auto readelf = run_to_exit("/usr/bin/readelf", {"-d", library()}, dir / "readelf.txt");
  CHECK_THAT(read_file(dir / "readelf.txt"), Catch::Contains("Library soname: [libsotto_client.so.0]"));
}

}  // namespace sotto::test
