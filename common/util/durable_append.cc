#include "common/util/durable_append.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/util/error.h"
#include "common/util/posix_io.h"

namespace sotto::util {

namespace {

// Cuts the file after its last newline (to nothing when it has none): what follows is a line a crash tore.
bool cut_torn_tail(int fd) {
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return false;
  const off_t size = end;
  char block[4096];
  while (end > 0) {
    const off_t start = end > static_cast<off_t>(sizeof block) ? end - static_cast<off_t>(sizeof block) : 0;
    const ssize_t n = ::pread(fd, block, static_cast<std::size_t>(end - start), start);
    if (n != end - start) return false;
    for (ssize_t i = n - 1; i >= 0; --i) {
      if (block[i] == '\n') return start + i + 1 == size || ::ftruncate(fd, start + i + 1) == 0;
    }
    end = start;
  }
  return size == 0 || ::ftruncate(fd, 0) == 0;
}

}  // namespace

void append_line_durably(const std::filesystem::path& path, std::string_view line) {
  const bool existed = std::filesystem::exists(path);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  ok = ok && cut_torn_tail(fd);
  ok = ok && write_all(fd, line) && write_all(fd, "\n") && ::fsync(fd) == 0;
  int saved = errno;
  if (fd >= 0) ::close(fd);
  if (ok && !existed && !sync_directory(path.parent_path())) {
    ok = false;
    saved = errno;
  }
  if (!ok) throw Error("cannot append durably to " + path.string() + ": " + std::strerror(saved));
}

}  // namespace sotto::util
