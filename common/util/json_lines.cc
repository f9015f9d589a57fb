#include "common/util/json_lines.h"

#include <string>

#include "common/util/error.h"
#include "common/util/file.h"

namespace sotto::util {

std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& path) {
  std::vector<nlohmann::json> records;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return records;
  const std::string text = read_file(path);
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // a line still being written
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw Error(path.string() + ": unparsable line: " + line + " (" + e.what() + ")");
    }
  }
  return records;
}

}  // namespace sotto::util
