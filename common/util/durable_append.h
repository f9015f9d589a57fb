// Appending one line to a file so that it survives a crash or a power cut once the call returns: O_APPEND write,
// fsync of the file, and of its directory when the call created the file. A last line left without its newline by
// an earlier crash never completed (its call never returned), so it is cut off first: a torn record never swallows
// the next one.
#pragma once

#include <filesystem>
#include <string_view>

namespace sotto::util {

// Throws sotto::Error naming the file and the system's reason when the line cannot be made durable.
void append_line_durably(const std::filesystem::path& path, std::string_view line);

}  // namespace sotto::util
