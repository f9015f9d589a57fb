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

TEST_CASE("the round log gives the spread of the devices' own held-out accuracies, global against personal",
          "[aggregator][round_log][personal]") {
  aggregator::RoundReport report;
  report.round_id = 3;
  report.completed = true;
  const nlohmann::json none = aggregator::round_record(report, 3, {}, std::nullopt, 0);
  CHECK_FALSE(none.contains("local_evaluation"));
  CHECK(none.at("schema_version") == 5);
  // Global 0.5..0.9 in steps of 0.1, personal 0.1 higher: p10 interpolates between the two lowest.
  for (int i = 0; i < 5; ++i) report.local_evaluations.push_back({20, 0.5 + 0.1 * i, 0.6 + 0.1 * i});
  const nlohmann::json j = aggregator::round_record(report, 3, {}, std::nullopt, 0).at("local_evaluation");
  CHECK(j.at("clients") == 5);
  CHECK(j.at("examples") == 100);
  CHECK(j.at("global").at("mean").get<double>() == Approx(0.7));
  CHECK(j.at("global").at("median").get<double>() == Approx(0.7));
  CHECK(j.at("global").at("p10").get<double>() == Approx(0.54));
  CHECK(j.at("personal").at("p10").get<double>() == Approx(0.64));
  CHECK(j.at("personal").at("mean").get<double>() == Approx(0.8));
}
