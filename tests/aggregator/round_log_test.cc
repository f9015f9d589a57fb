// RoundLog (aggregator/round_log.h): rounds.jsonl appended durably, so a line torn by a crash never swallows the
// next round's record.
#include "aggregator/round_log.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/util/json_lines.h"

namespace fs = std::filesystem;
using namespace sotto;

TEST_CASE("the round log cuts a torn last line before appending the next round", "[aggregator][round_log]") {
  const fs::path dir = fs::temp_directory_path() / ("sotto-round-log-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path file = dir / "rounds.jsonl";
  aggregator::RoundLog log(file);
  log.append({{"round", 1}, {"status", "completed"}});
  std::ofstream(file, std::ios::app) << R"({"round": 2, "stat)";  // a crash mid-write
  aggregator::RoundLog after_restart(file);
  after_restart.append({{"round", 2}, {"status", "completed"}});
  const auto lines = util::read_json_lines(file);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].at("round") == 1);
  CHECK(lines[1].at("round") == 2);
  CHECK(lines[1].at("status") == "completed");
  fs::remove_all(dir);
}
