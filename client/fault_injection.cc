#include "client/fault_injection.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace sotto::client {

void vanish_if(const ClientConfig& config, const char* step) {
  if (config.vanish_after != step) return;
  spdlog::warn("fault injection: vanishing after the step '{}'", step);
  spdlog::default_logger()->flush();
  std::_Exit(97);
}

}  // namespace sotto::client
