// JSON-lines files as Sotto writes them (rounds.jsonl, ledger.jsonl): one JSON value per line, appended by a
// process that may be writing the next line right now. Readers take the complete lines only.
#pragma once

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

namespace sotto::util {

// One value per non-empty line. A last line without its newline (being written) is skipped; any other
// unparsable line throws sotto::Error naming the file and the line. A missing file yields no records.
std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& path);

}  // namespace sotto::util
