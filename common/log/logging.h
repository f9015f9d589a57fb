// Logging: one spdlog setup for every Sotto binary — timestamped lines on stderr, a level from the config or
// command line ("trace" … "off"), and the process's role in every line so interleaved logs stay readable.
#pragma once

#include <string>

namespace sotto::log {

// Throws sotto::Error for an unknown level name.
void init_logging(const std::string& role, const std::string& level);

}  // namespace sotto::log
