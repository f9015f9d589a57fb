// The kept generation: what an app keeps beside its state key so that a state directory put back to an older
// state is refused (state_store.h). sotto-client keeps it in a file, <key_file>.generation by default: one decimal
// number, replaced atomically after each change of the store.
#pragma once

#include <cstdint>
#include <filesystem>

namespace sotto::client {

// Where it is kept unless configured: <key_file>.generation.
inline std::filesystem::path default_kept_generation_file(const std::filesystem::path& key_file) {
  std::filesystem::path file = key_file;
  file += ".generation";
  return file;
}
// 0 when the file does not exist yet; throws sotto::Error when it holds anything but a number.
std::uint64_t read_kept_generation(const std::filesystem::path& file);
void write_kept_generation(const std::filesystem::path& file, std::uint64_t generation);

}  // namespace sotto::client
