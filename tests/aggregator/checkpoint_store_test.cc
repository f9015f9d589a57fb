#include "aggregator/checkpoint_store.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/codec/model_file.h"
#include "common/util/error.h"
#include "tests/support/test_support.h"

namespace sotto::aggregator {
namespace {

model::ModelParameters weights(std::vector<float> w) {
  model::Tensor t{"fc.weight", model::DType::kFloat32, {static_cast<std::int64_t>(w.size())},
                  std::vector<std::byte>(w.size() * sizeof(float))};
  std::memcpy(t.data.data(), w.data(), t.data.size());
  return model::ModelParameters({t});
}

CheckpointStore store_in(const test::TempDir& dir, bool keep_round_models = false) {
  return CheckpointStore({dir.path(), "the built-in fashion_cnn model", "fedadam", keep_round_models});
}

action::RoundClosed closed_round(std::uint64_t round, model::ModelParameters model, model::ModelParameters state) {
  action::RoundClosed rc;
  rc.report.round_id = round;
  rc.report.completed = true;
  rc.global_model = std::make_shared<const model::ModelParameters>(std::move(model));
  rc.strategy = "fedadam";
  rc.strategy_state = std::make_shared<const model::ModelParameters>(std::move(state));
  rc.next_round_id = round + 1;
  rc.completed_rounds = round;
  return rc;
}

std::string load_error(const CheckpointStore& store, model::ModelParameters fresh) {
  try {
    store.load_or_create(std::move(fresh));
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("the checkpoint was accepted");
  return {};
}

}  // namespace

TEST_CASE("a checkpoint store starts a new training, then resumes the round, model and strategy state it saved",
          "[aggregator][checkpoint]") {
  test::TempDir dir;
  const auto store = store_in(dir, true);
  const CoordinatorStart fresh = store.load_or_create(weights({1, 2, 3}));
  CHECK(fresh.next_round_id == 1);
  CHECK(std::filesystem::exists(store.checkpoint_path()));
  CHECK(std::filesystem::exists(store.round_model_path(0)));

  store.save(closed_round(4, weights({4, 5, 6}), weights({0.1f, 0.2f, 0.3f})));
  const CoordinatorStart resumed = store.load_or_create(weights({1, 2, 3}));
  CHECK(resumed.next_round_id == 5);
  CHECK(resumed.completed_rounds == 4);
  CHECK(resumed.global_model == weights({4, 5, 6}));
  CHECK(resumed.strategy_state == weights({0.1f, 0.2f, 0.3f}));
  CHECK(codec::read_model_file(store.round_model_path(4)).model == weights({4, 5, 6}));
}

TEST_CASE("a checkpoint holding a NaN or an infinity is refused, naming the tensor and the way back",
          "[aggregator][checkpoint]") {
  test::TempDir dir;
  const auto store = store_in(dir, true);
  store.save(closed_round(2, weights({1, std::nanf(""), 3}), {}));
  const std::string nan = load_error(store, weights({0, 0, 0}));
  CHECK_THAT(nan, Catch::Contains("non-finite") && Catch::Contains("fc.weight") &&
                      Catch::Contains("global model") && Catch::Contains("model-round-<r>.sotto"));

  store.save(closed_round(2, weights({1, 2, 3}), weights({std::numeric_limits<float>::infinity(), 0, 0})));
  CHECK_THAT(load_error(store, weights({0, 0, 0})), Catch::Contains("strategy's state"));
}

TEST_CASE("a damaged checkpoint is refused with how to recover", "[aggregator][checkpoint]") {
  test::TempDir dir;
  const auto store = store_in(dir);
  store.save(closed_round(1, weights({1, 2, 3}), {}));
  std::string bytes = test::read_file(store.checkpoint_path());
  bytes[bytes.size() - 2] = static_cast<char>(bytes[bytes.size() - 2] ^ 1);
  test::write_file(store.checkpoint_path(), bytes);
  CHECK_THAT(load_error(store, weights({0, 0, 0})),
             Catch::Contains("fails its checksum") && Catch::Contains("state.keep_round_models"));
}

TEST_CASE("a checkpoint of another layout or another strategy is refused", "[aggregator][checkpoint]") {
  test::TempDir dir;
  const auto store = store_in(dir);
  store.save(closed_round(1, weights({1, 2, 3}), {}));
  CHECK_THAT(load_error(store, weights({0, 0})),
             Catch::Contains("does not match the built-in fashion_cnn model ([model] in the config)"));
  const CheckpointStore fedavg({dir.path(), "the built-in fashion_cnn model", "fedavg", false});
  CHECK_THAT(load_error(fedavg, weights({0, 0, 0})), Catch::Contains("written by strategy \"fedadam\""));
}

}  // namespace sotto::aggregator
