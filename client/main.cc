// sotto-client: a Sotto client process that trains the built-in CNN on shard i of N of Fashion-MNIST and takes
// part in federated rounds until the aggregator says training is finished.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <csignal>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "client/client.h"
#include "client/deferred_trainer.h"
#include "client/image_trainer.h"
#include "client/waiting_trainer.h"
#include "client/kept_generation.h"
#include "client/state_commands.h"
#include "client/state_key.h"
#include "common/data/partition.h"
#include "common/log/logging.h"
#include "common/ml/torch_runtime.h"
#include "common/util/error.h"

namespace {

using namespace sotto;

void log_event(const client::ClientEvent& e) {
  using K = client::ClientEventKind;
  switch (e.kind) {
    case K::kAwaitingConsent: spdlog::info("waiting for consent: {}", e.message); break;
    case K::kConsentRevoked: spdlog::info("{}", e.message); break;
    case K::kConnecting: spdlog::debug("connecting to {}", e.message); break;
    case K::kConnectFailed:
      spdlog::info("aggregator not reachable ({}); retrying in {:.0f} ms", e.message, e.value);
      break;
    case K::kAdmitted: spdlog::info("admitted to round {}", e.round_id); break;
    case K::kRetryLater: spdlog::info("aggregator asks to come back in {:.0f} ms: {}", e.value, e.message); break;
    case K::kTaskReceived: spdlog::info("round {}: received the global model; training", e.round_id); break;
    case K::kTrained: spdlog::info("round {}: trained, mean loss {:.4f}", e.round_id, e.value); break;
    case K::kUploaded: spdlog::info("round {}: update sent ({:.0f} bytes)", e.round_id, e.value); break;
    case K::kRoundCompleted: spdlog::info("round {}: completed", e.round_id); break;
    case K::kRoundAbandoned: spdlog::warn("round {}: {}", e.round_id, e.message); break;
    case K::kRejected: spdlog::warn("aggregator: {}", e.message); break;
    case K::kFinished: spdlog::info("{}", e.message); break;
    case K::kIneligible: spdlog::info("not eligible now: {}", e.message); break;
  }
}

// The training-set indices listed in `path`, one per line, each below `size`.
std::vector<std::uint32_t> read_indices(const std::filesystem::path& path, std::size_t size) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read data.indices_file " + path.string());
  std::vector<std::uint32_t> indices;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec != std::errc() || end != line.data() + line.size() || v >= size) {
      throw Error(path.string() + ":" + std::to_string(number) + ": \"" + line +
                  "\" is not an example index below the training set's " + std::to_string(size));
    }
    indices.push_back(static_cast<std::uint32_t>(v));
  }
  if (indices.empty()) throw Error(path.string() + " lists no examples");
  return indices;
}

std::vector<std::uint32_t> load_shard(const client::SottoClientConfig& cfg, const data::ImageDataset& train) {
  if (!cfg.indices_file.empty()) return read_indices(cfg.indices_file, train.size());
  const data::Partition partition =
      cfg.partition == client::Partitioning::kIid
          ? data::partition_iid(train.size(), cfg.num_shards, cfg.partition_seed)
          : data::partition_dirichlet(train.labels, cfg.num_shards, cfg.dirichlet_alpha, cfg.partition_seed);
  std::vector<std::uint32_t> shard = partition.at(cfg.shard_index);
  if (cfg.max_examples > 0 && shard.size() > cfg.max_examples) shard.resize(cfg.max_examples);
  return shard;
}

// The whitespace-separated integers of a contribution file, each in [-2^31, 2^32 - 1] and taken mod 2^32.
std::vector<std::uint32_t> read_contribution(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read the contribution file " + path);
  std::vector<std::uint32_t> values;
  std::string token;
  while (in >> token) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || end != token.data() + token.size() || v < -2147483648LL || v > 4294967295LL) {
      throw Error(path + ": value " + std::to_string(values.size() + 1) + " \"" + token +
                  "\" is not an integer between -2147483648 and 4294967295");
    }
    values.push_back(static_cast<std::uint32_t>(v));
  }
  if (values.empty()) throw Error(path + " holds no integers to contribute");
  return values;
}

// The trainer that loads LibTorch, the data and the model once the aggregator admits this client, while the cohort
// fills: until then the process is small and quick to start (common/ml/torch_runtime.h).
std::shared_ptr<client::DeferredTrainer> deferred_trainer(const client::SottoClientConfig& cfg) {
  if (!std::filesystem::is_directory(cfg.data_dir)) {
    throw Error("data.dir " + cfg.data_dir.string() +
                " is not a directory: install dataset-fashion-mnist, or point data.dir at its IDX files");
  }
  return std::make_shared<client::DeferredTrainer>([cfg] {
    // This thread only prepares: at a lower CPU priority, so that foreground work (the app's, and on a shared
    // machine other clients' check-ins) comes first. Training runs on the client's own thread.
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10) != 0) {
      spdlog::debug("could not lower the preparing thread's priority: {}", std::strerror(errno));
    }
    const auto started = std::chrono::steady_clock::now();
    const ml::TorchRuntime& torch = ml::TorchRuntime::get();
    torch.set_torch_threads(cfg.client.limits.training_threads);
    auto train = std::make_shared<data::ImageDataset>(data::load_fashion_mnist(cfg.data_dir, data::Split::kTrain));
    auto shard = load_shard(cfg, *train);
    if (cfg.indices_file.empty()) {
      spdlog::info("shard {} of {} ({}): {} examples", cfg.shard_index, cfg.num_shards,
                   cfg.partition == client::Partitioning::kIid ? "iid" : "dirichlet", shard.size());
    } else {
      spdlog::info("{} examples listed in {}", shard.size(), cfg.indices_file.string());
    }
    // The device's own test split: from its shard, by a seed of its own (the partition's and its id).
    const data::HeldOut split =
        data::hold_out(shard, cfg.local_fraction, ml::client_training_seed(cfg.partition_seed, cfg.client.client_id));
    if (!split.test.empty()) spdlog::info("{} of them held out to measure the models locally", split.test.size());
    auto image_trainer =
        std::make_shared<client::ImageTrainer>(torch.make_model(cfg.model, 0), train, split.train, split.test);
    spdlog::info("LibTorch, data and model ready in {:.2f} s",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return image_trainer;
  });
}

// state.dir's key, and the generation kept beside it, into the client's config.
client::SottoClientConfig with_state_key(client::SottoClientConfig cfg) {
  if (cfg.client.state_dir.empty()) return cfg;
  if (cfg.state_key_file.empty()) {
    throw Error("state.key_file is required with state.dir: the state is sealed under it (make one with "
                "`sotto-client keygen --key-file FILE`)");
  }
  const client::StateKey key = client::read_state_key_file(cfg.state_key_file);
  cfg.client.state_key.emplace();
  std::copy(key.begin(), key.end(), cfg.client.state_key->begin());
  cfg.client.state_min_generation = client::read_kept_generation(cfg.state_generation_file);
  return cfg;
}

// consent.grant records the operator's grant; without it the person's record must cover the work, or the client
// does not start (it would only wait, holding the state directory that `sotto-client consent grant` needs).
void settle_consent(client::Client& client, const client::SottoClientConfig& cfg, client::ConsentScope needed) {
  if (cfg.consent_grant) {
    client.set_consent(true, *cfg.consent_grant);
    spdlog::info("consent.grant: {}", client::describe(client.consent()));
  }
  if (!client::covers(client.consent(), needed)) {
    const std::string scope = client::consent_scope_names(needed).front();
    throw Error("no consent for " + scope + " is recorded (" + client::describe(client.consent()) +
                "): the person grants it with `sotto-client consent grant --state-dir DIR --key-file FILE --scope " +
                scope + "`, or the config's consent.grant records it; nothing was sent");
  }
}

// Runs the client until it finishes; SIGINT and SIGTERM (blocked in every thread) are taken by a thread that asks
// it to stop, not by an async handler.
client::RunSummary run_until_done_or_signalled(client::Client& client, sigset_t signals) {
  std::atomic<bool> exiting{false};
  std::thread signal_thread([&] {
    int signo = 0;
    sigwait(&signals, &signo);
    if (!exiting) {
      spdlog::info("received signal {}; stopping", signo);
      client.stop();
    }
  });
  auto release = [&] {
    exiting = true;
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  };
  try {
    const client::RunSummary summary = client.run();
    release();
    return summary;
  } catch (...) {
    release();
    throw;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sotto-client: trains on one shard of Fashion-MNIST on this device and sends only model updates "
      "to a Sotto aggregator over TLS 1.3"};
  std::string config_path;
  std::string log_level;
  app.add_option("--config", config_path, "TOML config file (keys documented in README.md); runs the client")
      ->check(CLI::ExistingFile);
  client::StateCommandOptions state_options;
  client::add_state_commands(app, state_options);
  app.require_subcommand(0, 1);
  app.add_option("--log-level", log_level, "Overrides log.level: trace, debug, info, warn, error, critical, off");
  std::string contribute;
  app.add_option("--contribute", contribute,
                 "Federated analytics: instead of training, contribute the whitespace-separated integers in FILE to "
                 "the aggregator's secure sums (task.kind = \"secure_sum\")")
      ->check(CLI::ExistingFile);
  double simulate_training = -1;
  app.add_option("--simulate-training", simulate_training,
                 "TEST MODE, for load tests of the aggregator: train nothing, wait SECONDS instead and send an empty "
                 "update (LibTorch is never loaded)")
      ->check(CLI::Range(0.0, 86400.0));
  CLI11_PARSE(app, argc, argv);
  try {
    if (auto status = client::run_state_command(app, state_options)) return *status;
  } catch (const std::exception& e) {
    std::cerr << "sotto-client: error: " << e.what() << std::endl;
    return 1;
  }
  if (config_path.empty()) {
    std::cerr << "sotto-client: --config FILE is required to run a client (or give a command: keygen, consent)\n";
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    const auto cfg = with_state_key(client::load_sotto_client_config(config_path));
    log::init_logging(cfg.client.client_id, log_level.empty() ? cfg.log_level : log_level);
    std::shared_ptr<client::DeferredTrainer> trainer;  // when training (not contributing)
    std::unique_ptr<client::Client> client;
    if (!contribute.empty()) {
      auto values = read_contribution(contribute);
      spdlog::info("contributing {} integers from {} to secure sums", values.size(), contribute);
      client = std::make_unique<client::Client>(cfg.client, std::move(values));
    } else if (simulate_training >= 0) {
      spdlog::warn("test mode: --simulate-training {} s: this client trains nothing and sends an empty update",
                   simulate_training);
      client = std::make_unique<client::Client>(
          cfg.client, std::make_shared<client::WaitingTrainer>(std::chrono::milliseconds(
                          static_cast<std::int64_t>(std::llround(simulate_training * 1000)))));
    } else {
      trainer = deferred_trainer(cfg);
      client = std::make_unique<client::Client>(cfg.client, trainer);
    }
    if (!cfg.state_generation_file.empty()) {
      client->on_state_change([file = cfg.state_generation_file](std::uint64_t generation) {
        client::write_kept_generation(file, generation);
      });
    }
    settle_consent(*client, cfg,
                   contribute.empty() ? client::ConsentScope::kTraining : client::ConsentScope::kAnalytics);
    client->on_event([trainer](const client::ClientEvent& e) {
      log_event(e);
      if (trainer && e.kind == client::ClientEventKind::kAdmitted) trainer->prepare();
    });
    const client::RunSummary summary = run_until_done_or_signalled(*client, signals);
    spdlog::info("contributed to {} rounds", summary.rounds_contributed);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sotto-client: error: " << e.what() << std::endl;
    return 1;
  }
}
