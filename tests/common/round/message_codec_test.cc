#include "common/round/message_codec.h"

#include <catch2/catch.hpp>

#include "common/codec/plan_codec.h"

using namespace sotto;

namespace {

v1::TaskAssignment task_with_digest(std::size_t digest_bytes) {
  v1::TaskAssignment t;
  t.set_round_id(4);
  *t.mutable_plan() = codec::plan_to_proto(ml::TrainingPlan{});
  t.set_deadline_ms(2500);
  t.set_model_sha256(std::string(digest_bytes, '\x5a'));
  return t;
}

}  // namespace

TEST_CASE("a task's 32-byte model digest is carried and one of any other length is refused as malformed",
          "[round][codec]") {
  const round::Task task = round::task_from_proto(task_with_digest(32), {});
  REQUIRE(task.model_sha256);
  CHECK((*task.model_sha256)[31] == 0x5a);
  CHECK(task.deadline == std::chrono::milliseconds(2500));
  for (std::size_t bad : {1u, 31u, 33u, 64u}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH(round::task_from_proto(task_with_digest(bad), {}), Catch::Contains("not the 32 of a SHA-256"));
  }
  CHECK_FALSE(round::task_from_proto(task_with_digest(0), {}).model_sha256);  // an aggregator that sends none
}
