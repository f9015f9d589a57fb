// Numbers quoted in messages: four significant digits, and more only where they are needed to tell two apart.
#include "common/util/short_number.h"

#include <catch2/catch.hpp>

using sotto::util::short_number;
using sotto::util::short_number_apart;

TEST_CASE("messages quote numbers in four digits unless more tell them from the limit they are compared with",
          "[util]") {
  CHECK(short_number(3.14159265) == "3.142");
  CHECK(short_number(1e-5) == "1e-05");
  CHECK(short_number_apart(8.0000021, 8.0) == "8.000002");
  CHECK(short_number_apart(7.99, 8.0) == "7.99");
  CHECK(short_number_apart(8.0, 8.0) == "8");
  CHECK(short_number_apart(3.0000000000000004, 3.0) != "3");  // the difference is shown however small
}
