// The few POSIX steps durable files are made of: writing a whole buffer to a descriptor (retrying short writes and
// EINTR) and fsyncing a directory, so that a file created or renamed in it survives a power cut.
#pragma once

#include <filesystem>
#include <string_view>

namespace sotto::util {

// False with errno set when the write fails.
bool write_all(int fd, std::string_view bytes);
// False with errno set when the directory cannot be opened or synced.
bool sync_directory(const std::filesystem::path& dir);

}  // namespace sotto::util
