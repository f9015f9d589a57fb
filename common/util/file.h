// Whole files as strings, for the small text files Sotto's tools read back: logs, JSON lines, port files.
#pragma once

#include <filesystem>
#include <string>

namespace sotto::util {

// The file's bytes; throws sotto::Error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace sotto::util
