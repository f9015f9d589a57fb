// Replacing a file whole, so that a crash or a power cut at any moment leaves either the old file or the new one,
// never a mix: the new bytes go to <file>.tmp, which is fsynced and then renamed over the file, and the directory
// is fsynced. StagedFile splits the two steps so that a test can stop between them, as a crash would.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace sotto::util {

class StagedFile {
 public:
  // Writes and fsyncs <target>.tmp (replacing a temporary an earlier crash left); the target is untouched. Throws
  // sotto::Error naming the file and the system's reason.
  StagedFile(std::filesystem::path target, std::string_view contents, mode_t mode);
  // Not committed: removes the temporary.
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Renames the temporary over the target and fsyncs the directory. Throws sotto::Error.
  void commit();

  static std::filesystem::path temporary_for(const std::filesystem::path& target);

 private:
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  bool committed_ = false;
};

// StagedFile(target, contents, mode).commit().
void write_file_atomically(const std::filesystem::path& target, std::string_view contents, mode_t mode = 0600);

}  // namespace sotto::util
