#include "common/config/toml_reader.h"

#include <catch2/catch.hpp>

#include "common/util/error.h"

using sotto::config::TomlReader;

TEST_CASE("toml reader: typed getters return values and fall back to defaults") {
  auto r = TomlReader::from_string("[a]\nn = 3\nx = 0.5\nname = \"hi\"\nflag = true\nlist = [\"p\", \"q\"]\n");
  CHECK(r.get_int("a.n", 1, 0, 10) == 3);
  CHECK(r.get_double("a.x", 1.0, 0, 1) == 0.5);
  CHECK(r.get_double("a.n", 1.0, 0, 10) == 3.0);  // integers are numbers too
  CHECK(r.get_string("a.name", "") == "hi");
  CHECK(r.get_bool("a.flag", false));
  CHECK(r.get_strings("a.list") == std::vector<std::string>{"p", "q"});
  CHECK(r.get_int("a.missing", 7, 0, 10) == 7);
  CHECK_NOTHROW(r.reject_unknown_keys());
}

TEST_CASE("toml reader: errors name the source and the key, and say what is allowed") {
  auto r = TomlReader::from_string("[a]\nn = 30\ns = 5\nmode = \"fast\"\n", "test.toml");
  CHECK_THROWS_WITH(r.get_int("a.n", 1, 0, 10), Catch::Contains("test.toml") && Catch::Contains("'a.n'") &&
                                                    Catch::Contains("between 0 and 10"));
  CHECK_THROWS_WITH(r.get_string("a.s", ""), Catch::Contains("'a.s'") && Catch::Contains("must be a string"));
  CHECK_THROWS_WITH(r.get_choice("a.mode", {"slow", "safe"}, "slow"),
                    Catch::Contains("'a.mode'") && Catch::Contains("\"slow\", \"safe\""));
  CHECK_THROWS_WITH(r.get_string("a.required", std::nullopt), Catch::Contains("'a.required' is required"));
}

TEST_CASE("toml reader: an unknown key is refused by name") {
  auto r = TomlReader::from_string("[rounds]\ntotal = 3\ncohort_taget = 5\n", "agg.toml");
  r.get_int("rounds.total", 1, 1, 10);
  CHECK_THROWS_WITH(r.reject_unknown_keys(), Catch::Contains("unknown key 'rounds.cohort_taget'"));
}

TEST_CASE("toml reader: a syntax error names the line") {
  CHECK_THROWS_WITH(TomlReader::from_string("[a]\nx = = 1\n", "bad.toml"), Catch::Contains("bad.toml:2"));
}

TEST_CASE("toml reader: a missing file is an error that names it") {
  CHECK_THROWS_WITH(TomlReader::from_file("/nonexistent/sotto.toml"), Catch::Contains("/nonexistent/sotto.toml"));
}
