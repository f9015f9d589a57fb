// sotto-aggregator: the Sotto aggregation daemon. Runs federated rounds over TLS 1.3 until the configured number
// of rounds is complete, checkpointing after every round and resuming from the last checkpoint on restart.
#include <iostream>
#include <mutex>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "aggregator/aggregator_config.h"
#include "aggregator/server.h"
#include "common/data/image_dataset.h"
#include "common/log/logging.h"
#include "common/ml/torch_runtime.h"
#include "common/model/personal_tensors.h"
#include "common/util/error.h"

int main(int argc, char** argv) {
  using namespace sotto;
  CLI::App app{"sotto-aggregator: runs federated-averaging rounds over TLS 1.3 for Sotto clients"};
  std::string config_path;
  std::string log_level;
  app.add_option("--config", config_path, "TOML config file (keys documented in README.md)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", log_level, "Overrides log.level: trace, debug, info, warn, error, critical, off");
  CLI11_PARSE(app, argc, argv);

  try {
    const auto cfg = aggregator::load_aggregator_config(config_path);
    log::init_logging("aggregator", log_level.empty() ? cfg.log_level : log_level);
    // LibTorch is loaded from its module when the initial model is built, after the server listens: clients
    // that connect meanwhile wait in the listen backlog instead of being refused (common/ml/torch_runtime.h).
    auto torch = [] () -> const ml::TorchRuntime& {
      const ml::TorchRuntime& runtime = ml::TorchRuntime::get();
      runtime.set_torch_threads(1);
      return runtime;
    };
    const bool secure_sum = cfg.rounds.secure_sum_length > 0;  // federated analytics: no model at all
    aggregator::Evaluator evaluator;
    const model::PersonalTensors personal(cfg.rounds.plan.personal);
    if (cfg.evaluate && !secure_sum && !personal.empty()) {
      spdlog::warn("evaluation is off: with personal tensors (personalization.personal = [{}]) the global model is "
                   "not a whole model, and only each device can evaluate its own", personal.describe());
    }
    if (cfg.evaluate && !secure_sum && personal.empty()) {
      // The test set is read now (a bad one stops the start); the model is built on the first evaluation, on the
      // server's one evaluation thread.
      auto test = std::make_shared<data::ImageDataset>(data::load_fashion_mnist(cfg.eval_data_dir, data::Split::kTest));
      auto model = std::make_shared<std::unique_ptr<ml::ImageModel>>();
      evaluator = [test, model, torch, &cfg](const model::ModelParameters& params) {
        if (!*model) *model = torch().make_model(cfg.model, cfg.init_seed);
        (*model)->load(params);
        return (*model)->evaluate(*test, cfg.eval_max_examples);
      };
    }
    auto factory = [&cfg, secure_sum, torch, personal] {
      if (secure_sum) return model::ModelParameters{};
      return personal.global_part(torch().make_model(cfg.model, cfg.init_seed)->parameters(), cfg.model.describe());
    };
    aggregator::AggregatorServer server(cfg, factory, evaluator,
                                        [config_path] { return aggregator::load_aggregator_config(config_path); });
    server.run();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sotto-aggregator: error: " << e.what() << std::endl;
    return 1;
  }
}
