#include "common/log/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <google/protobuf/stubs/logging.h>

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
  // libprotobuf reports, e.g., invalid UTF-8 in a peer's string field on stderr by itself: route it through our
  // log at debug level, since any peer can trigger it and the frame is rejected with its own message anyway.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
        if (level >= google::protobuf::LOGLEVEL_FATAL) {
          spdlog::critical("protobuf {}:{}: {}", file, line, message);
        } else {
          spdlog::debug("protobuf {}:{}: {}", file, line, message);
        }
      });
}

}  // namespace sotto::log
