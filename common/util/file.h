// Whole files as strings, for the small text files Sotto's tools read back (logs, JSON lines, port files), and
// appending to one.
#pragma once

#include <filesystem>
#include <string>

namespace sotto::util {

// The file's bytes; throws sotto::Error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);
// Appends the bytes (creating the file); throws sotto::Error naming the path when it cannot be written.
void append_to_file(const std::filesystem::path& path, const std::string& bytes);

}  // namespace sotto::util
