#include "common/round/message_codec.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "common/codec/plan_codec.h"
#include "common/dp/ddg_parameters.h"

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

TEST_CASE("an adaptive-clipping plan carries the count weight and the device derives the joint clip norm itself",
          "[round][codec][dp]") {
  round::SecureAssignment a;
  a.config = {3, 5, 4, 3, 8, 16};
  a.config.graph_seed.fill(1);
  a.clip_norm = 1.5;
  round::DistributedNoise noise;
  noise.ddg = dp::choose_ddg_parameters({16, std::sqrt(1.5 * 1.5 + 0.25), 1.0, 5, 3, 5});
  noise.ddg.clip_norm = 99;  // not sent: the device computes sqrt(C^2 + w^2/4) from the update's clip norm
  noise.min_survivors = 3;
  noise.clipped_count_weight = 1;
  a.noise = noise;
  const auto back = round::from_proto(round::to_proto(a), 3);
  REQUIRE(back.noise);
  CHECK(back.noise->clipped_count_weight == 1);
  CHECK(back.noise->ddg.clip_norm == Approx(std::sqrt(1.5 * 1.5 + 0.25)));
  CHECK(back.clip_norm == 1.5);
  for (double bad : {-1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
    auto proto = round::to_proto(a);
    proto.mutable_ddg()->set_clipped_count_weight(bad);
    CHECK_THROWS_WITH(round::from_proto(proto, 3), Catch::Contains("clipped-count weight"));
  }
}

TEST_CASE("a plan's personal-tensor patterns travel in order, and empty or too many are refused", "[round][codec][personal]") {
  ml::TrainingPlan plan;
  plan.personal = {"head.*", "*.running_mean"};
  CHECK(codec::plan_from_proto(codec::plan_to_proto(plan)).personal == plan.personal);
  plan.personal = {"head.*", ""};
  CHECK_THROWS_WITH(codec::plan_from_proto(codec::plan_to_proto(plan)), Catch::Contains("personal-tensor pattern"));
  plan.personal.assign(257, "x.*");
  CHECK_THROWS_WITH(codec::plan_from_proto(codec::plan_to_proto(plan)), Catch::Contains("257 personal-tensor patterns"));
}
