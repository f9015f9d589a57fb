#include "common/log/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/util/error.h"

namespace sotto::log {

void init_logging(const std::string& role, const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw Error("unknown log level \"" + level + "\"; use trace, debug, info, warn, error, critical or off");
  }
  auto logger = spdlog::stderr_color_mt(role);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%n] %^%l%$ %v");
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
}

}  // namespace sotto::log
