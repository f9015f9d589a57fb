// util::append_line_durably: lines land whole, a torn last line from an earlier crash is cut off rather than glued
// to the next, and a file that cannot be written is reported by name.
#include "common/util/durable_append.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "common/util/error.h"
#include "common/util/file.h"
#include "common/util/json_lines.h"

namespace fs = std::filesystem;
using namespace sotto;

TEST_CASE("durable appends create the file, keep every line, and cut a torn tail", "[util]") {
  const fs::path dir = fs::temp_directory_path() / ("sotto-durable-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "journal.jsonl";
  fs::remove(file);
  util::append_line_durably(file, R"({"round":1})");
  util::append_line_durably(file, R"({"round":2})");
  CHECK(util::read_file(file) == "{\"round\":1}\n{\"round\":2}\n");
  std::ofstream(file, std::ios::app) << R"({"round":3,"rd)";  // a crash in the middle of a line
  util::append_line_durably(file, R"({"round":4})");
  CHECK(util::read_file(file) == "{\"round\":1}\n{\"round\":2}\n{\"round\":4}\n");
  CHECK(util::read_json_lines(file).size() == 3);
  // A torn first line leaves nothing before the new one.
  fs::remove(file);
  std::ofstream(file) << "{\"torn";
  util::append_line_durably(file, "{}");
  CHECK(util::read_file(file) == "{}\n");
  REQUIRE_THROWS_WITH(util::append_line_durably(dir / "missing-dir" / "x.jsonl", "{}"),
                      Catch::Contains("missing-dir"));
  fs::remove_all(dir);
}
