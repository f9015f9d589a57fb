#include "common/util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/util/error.h"
#include "common/util/posix_io.h"

namespace sotto::util {

std::filesystem::path StagedFile::temporary_for(const std::filesystem::path& target) {
  std::filesystem::path temporary = target;
  temporary += ".tmp";
  return temporary;
}

StagedFile::StagedFile(std::filesystem::path target, std::string_view contents, mode_t mode)
    : target_(std::move(target)), temporary_(temporary_for(target_)) {
  const int fd = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  bool ok = fd >= 0 && ::fchmod(fd, mode) == 0 && write_all(fd, contents) && ::fsync(fd) == 0;
  const int saved = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    ::unlink(temporary_.c_str());
    throw Error("cannot write " + temporary_.string() + " (to replace " + target_.string() +
                "): " + std::strerror(saved));
  }
}

StagedFile::~StagedFile() {
  if (!committed_) ::unlink(temporary_.c_str());
}

void StagedFile::commit() {
  if (std::rename(temporary_.c_str(), target_.c_str()) != 0) {
    throw Error("cannot rename " + temporary_.string() + " to " + target_.string() + ": " + std::strerror(errno));
  }
  committed_ = true;
  if (!sync_directory(target_.parent_path())) {
    throw Error("cannot sync the directory of " + target_.string() + ": " + std::strerror(errno));
  }
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents, mode_t mode) {
  StagedFile(target, contents, mode).commit();
}

}  // namespace sotto::util
