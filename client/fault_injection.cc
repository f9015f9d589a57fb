#include "client/fault_injection.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/model/clipping.h"

namespace sotto::client {

void vanish_if(const ClientConfig& config, const char* step) {
  if (config.vanish_after != step) return;
  spdlog::warn("fault injection: vanishing after the step '{}'", step);
  spdlog::default_logger()->flush();
  std::_Exit(97);
}

void tamper_with_upload(const ClientConfig& config, round::out::Upload& upload) {
  if (config.claim_examples > 0) {
    spdlog::warn("fault injection: claiming {} examples instead of {}", config.claim_examples,
                 upload.metrics.num_examples);
    upload.metrics.num_examples = config.claim_examples;
  }
  auto* delta = std::get_if<model::ModelParameters>(&upload.payload);
  if (config.scale_update == 1.0 || !delta) return;
  spdlog::warn("fault injection: sending the update multiplied by {}", config.scale_update);
  model::scale_floating(*delta, config.scale_update);
}

}  // namespace sotto::client
