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
#include "common/ml/image_model.h"

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
    ml::set_torch_threads(1);

    const bool secure_sum = cfg.rounds.secure_sum_length > 0;  // federated analytics: no model at all
    aggregator::Evaluator evaluator;
    if (cfg.evaluate && !secure_sum) {
      auto test = std::make_shared<data::ImageDataset>(data::load_fashion_mnist(cfg.eval_data_dir, data::Split::kTest));
      std::shared_ptr<ml::ImageModel> model = ml::make_image_model(cfg.architecture, cfg.init_seed);
      evaluator = [test, model, max = cfg.eval_max_examples](const model::ModelParameters& params) {
        model->load(params);
        return model->evaluate(*test, max);
      };
    }
    auto factory = [&cfg, secure_sum] {
      return secure_sum ? model::ModelParameters{} : ml::make_image_model(cfg.architecture, cfg.init_seed)->parameters();
    };
    aggregator::AggregatorServer server(cfg, factory, evaluator);
    server.run();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sotto-aggregator: error: " << e.what() << std::endl;
    return 1;
  }
}
