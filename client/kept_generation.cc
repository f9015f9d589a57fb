#include "client/kept_generation.h"

#include <charconv>
#include <string>

#include "common/util/atomic_file.h"
#include "common/util/error.h"
#include "common/util/file.h"

namespace sotto::client {

std::uint64_t read_kept_generation(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) return 0;
  std::string text = util::read_file(file);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::uint64_t generation = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), generation);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw Error("the state generation file " + file.string() + " does not hold a generation number: restore it, "
                "or remove it to accept the state directory as it is");
  }
  return generation;
}

void write_kept_generation(const std::filesystem::path& file, std::uint64_t generation) {
  util::write_file_atomically(file, std::to_string(generation) + "\n");
}

}  // namespace sotto::client
