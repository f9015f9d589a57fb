#include "common/util/descriptor_limit.h"

#include <catch2/catch.hpp>

#include "common/util/error.h"

namespace sotto::util {

TEST_CASE("the descriptor limit is raised to what is needed and never lowered", "[util]") {
  const auto before = descriptor_limit();
  REQUIRE(before.soft <= before.hard);
  const auto after = raise_descriptor_limit(before.soft, "the test");
  CHECK(after.soft == before.soft);
  const std::size_t wanted = std::min<std::size_t>(before.hard, before.soft + 16);
  CHECK(raise_descriptor_limit(wanted, "the test").soft >= wanted);
  CHECK(descriptor_limit().soft >= wanted);
}

TEST_CASE("a need above the hard descriptor limit is refused with the numbers and the way out", "[util]") {
  const auto limit = descriptor_limit();
  REQUIRE(limit.hard != static_cast<std::size_t>(-1));  // Linux bounds RLIMIT_NOFILE by fs.nr_open
  try {
    raise_descriptor_limit(limit.hard + 1, "server.max_connections = 99");
    FAIL("a need above the hard limit was accepted");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find("server.max_connections = 99") != std::string::npos);
    CHECK(message.find(std::to_string(limit.hard)) != std::string::npos);
    CHECK(message.find("ulimit -Hn") != std::string::npos);
  }
}

}  // namespace sotto::util
