// Helpers of the simulator's end-to-end tests: tiny configs with their own output directories, and reading back
// what a run wrote.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulations/sim_config.h"

namespace sotto::sim_test {

inline std::filesystem::path out_dir(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("sotto-sim-test-" + std::to_string(getpid()) + "-" + name);
}

inline sim::SimConfig tiny(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {"population=20",  "cohort_size=4", "rounds=2", "data.max_examples_per_client=50",
                                "evaluation.max_examples=200", "plots=false", "threads=2"};
  o.insert(o.end(), extra.begin(), extra.end());
  return sim::load_sim_config("", o, out_dir(name));
}

inline std::vector<nlohmann::json> read_rounds(const std::filesystem::path& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(dir / "rounds.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");
    if (j.contains("secagg")) j["secagg"].erase("seconds");
    out.push_back(j);
  }
  return out;
}

inline std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace sotto::sim_test
