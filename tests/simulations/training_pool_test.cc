// The training pool on its own: outcomes handed over in job order while later jobs still train, identical to the
// collected outcomes, failures kept per client, and a consumer that throws stopping the hand-over cleanly.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "simulations/population.h"
#include "simulations/training_pool.h"

using namespace sotto;

namespace {

// 64 28x28 images with pixels and labels from a fixed pattern: enough to train on, no files needed.
std::shared_ptr<const data::ImageDataset> patterned_images() {
  auto d = std::make_shared<data::ImageDataset>();
  d->rows = d->cols = 28;
  for (std::uint32_t i = 0; i < 64; ++i) {
    d->labels.push_back(static_cast<std::uint8_t>(i % 10));
    for (std::uint32_t p = 0; p < 28 * 28; ++p) d->pixels.push_back(static_cast<std::uint8_t>((i * 37 + p * 11) % 256));
  }
  return d;
}

struct Jobs {
  std::vector<std::vector<std::uint32_t>> examples;
  std::vector<sim::TrainingJob> jobs;
};

// Seven clients of 3-9 examples each; client 4 holds none, so its training fails.
Jobs seven_clients() {
  Jobs j;
  for (std::uint32_t c = 0; c < 7; ++c) {
    std::vector<std::uint32_t> ex;
    if (c != 4) {
      for (std::uint32_t k = 0; k < 3 + c; ++k) ex.push_back((c * 7 + k) % 64);
    }
    j.examples.push_back(ex);
  }
  for (std::uint32_t c = 0; c < 7; ++c) j.jobs.push_back({c, j.examples[c]});
  return j;
}

ml::TrainingPlan small_plan() {
  ml::TrainingPlan plan;
  plan.batch_size = 4;
  plan.learning_rate = 0.05;
  plan.seed = 99;
  return plan;
}

}  // namespace

TEST_CASE("the training pool hands outcomes over in job order, equal to the collected ones", "[sim][pool]") {
  const auto images = patterned_images();
  const Jobs j = seven_clients();
  sim::TrainingPool pool(2, ml::ModelSpec{}, 5, images);
  const auto global = ml::make_image_model("fashion_cnn", 5)->parameters();

  const std::vector<sim::TrainingOutcome> collected = pool.train(j.jobs, 3, global, small_plan());
  REQUIRE(collected.size() == 7);
  std::vector<sim::ClientIndex> order;
  std::size_t index = 0;
  pool.train(j.jobs, 3, global, small_plan(), [&](sim::TrainingOutcome&& o) {
    order.push_back(o.client);
    const sim::TrainingOutcome& c = collected.at(index++);
    CHECK(o.client == c.client);
    CHECK(o.error == c.error);
    REQUIRE(o.update.has_value() == c.update.has_value());
    if (o.update) {
      CHECK(o.update->round_id == 3);
      CHECK(o.update->num_examples == j.examples[o.client].size());
      CHECK(o.update->delta == c.update->delta);  // bit for bit, whichever worker trained it
      CHECK(o.update->train_loss == c.update->train_loss);
    }
  });
  CHECK(order == std::vector<sim::ClientIndex>{0, 1, 2, 3, 4, 5, 6});
  CHECK_FALSE(collected[4].update.has_value());
  CHECK_THAT(collected[4].error, Catch::Contains("no training examples"));
  // The delta is what training moved: local − global.
  auto model = ml::make_image_model("fashion_cnn", 5);
  ml::TrainingPlan plan = small_plan();
  plan.seed = ml::client_training_seed(plan.seed, sim::Population::client_id(2));
  model->train(*images, j.examples[2], plan);
  CHECK(collected[2].update->delta == model::subtract(model->parameters(), global));
}

TEST_CASE("a consumer that throws stops the hand-over and the pool reports it and stays usable", "[sim][pool]") {
  const auto images = patterned_images();
  const Jobs j = seven_clients();
  sim::TrainingPool pool(2, ml::ModelSpec{}, 5, images);
  const auto global = ml::make_image_model("fashion_cnn", 5)->parameters();
  std::size_t handed = 0;
  REQUIRE_THROWS_WITH(pool.train(j.jobs, 1, global, small_plan(),
                                 [&](sim::TrainingOutcome&&) {
                                   if (++handed == 3) throw std::runtime_error("the coordinator refused client 2");
                                 }),
                      "the coordinator refused client 2");
  CHECK(handed == 3);
  CHECK(pool.train(j.jobs, 2, global, small_plan()).size() == 7);
}
