// DeferredTrainer: the wrapped trainer is built once — in the background after prepare(), or by the first fit() —
// and a factory's error reaches every fit().
#include "client/deferred_trainer.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "common/util/error.h"

using namespace sotto;

namespace {

// Returns a model of one tensor holding `value`, with num_examples = 7.
class ConstantTrainer final : public client::Trainer {
 public:
  explicit ConstantTrainer(float value) : value_(value) {}
  client::FitResult fit(const model::ModelParameters&, const ml::TrainingPlan&, client::TrainingControl&) override {
    model::Tensor t{"w", model::DType::kFloat32, {1}, std::vector<std::byte>(4)};
    t.as_mutable<float>()[0] = value_;
    client::FitResult r;
    r.local_model.add(std::move(t));
    r.metrics.num_examples = 7;
    return r;
  }

 private:
  float value_;
};

}  // namespace

TEST_CASE("DeferredTrainer builds its trainer once, in the background after prepare()", "[client][deferred]") {
  client::TrainingControl control;
  std::atomic<int> builds{0};
  std::atomic<bool> built_elsewhere{false};
  const auto caller = std::this_thread::get_id();
  client::DeferredTrainer trainer([&] {
    ++builds;
    built_elsewhere = std::this_thread::get_id() != caller;
    return std::make_shared<ConstantTrainer>(2.5f);
  });
  CHECK(builds == 0);
  CHECK_FALSE(trainer.built());
  trainer.prepare();
  trainer.prepare();  // once is enough
  const auto r = trainer.fit({}, {}, control);
  CHECK(trainer.built());
  CHECK(r.local_model.tensors().at(0).as<float>()[0] == 2.5f);
  CHECK(r.metrics.num_examples == 7);
  trainer.fit({}, {}, control);
  CHECK(builds == 1);
  CHECK(built_elsewhere);
}

TEST_CASE("DeferredTrainer builds on the first fit() without prepare(), and repeats a factory's error", "[client][deferred]") {
  client::TrainingControl control;
  int builds = 0;
  client::DeferredTrainer ok([&] {
    ++builds;
    return std::make_shared<ConstantTrainer>(1.0f);
  });
  CHECK(ok.fit({}, {}, control).metrics.num_examples == 7);
  CHECK(builds == 1);

  int failures = 0;
  client::DeferredTrainer failing([&]() -> std::shared_ptr<client::Trainer> {
    ++failures;
    throw Error("cannot load LibTorch from /nowhere/libsotto_torch_runtime.so");
  });
  failing.prepare();
  CHECK_THROWS_WITH(failing.fit({}, {}, control), Catch::Contains("cannot load LibTorch"));
  CHECK_THROWS_WITH(failing.fit({}, {}, control), Catch::Contains("cannot load LibTorch"));
  CHECK(failures == 1);
  CHECK(failing.built());

  client::DeferredTrainer empty([] { return std::shared_ptr<client::Trainer>{}; });
  CHECK_THROWS_WITH(empty.fit({}, {}, control), Catch::Contains("returned no trainer"));
  CHECK_THROWS_WITH(client::DeferredTrainer(nullptr), Catch::Contains("needs a factory"));
}
