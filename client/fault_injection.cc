#include "client/fault_injection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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

void tamper_with_shares(const ClientConfig& config, round::out::ShareKeys& shares) {
  const auto count = std::min<std::size_t>(config.garble_shares, shares.shares.size());
  if (count == 0) return;
  spdlog::warn("fault injection: garbling the key shares sent to {} neighbours", count);
  for (std::size_t s = 0; s < count; ++s) shares.shares[s].ciphertext.back() ^= 0x5a;  // the AEAD tag
}

}  // namespace sotto::client
