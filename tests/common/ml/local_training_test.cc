// Personalization's local training on fashion_linear, against values computed here by hand: a proximal term pulled
// toward a given anchor and frozen tensors (common/ml), and the device trainer's FedRep schedule, fine-tuning and
// Ditto (client/image_trainer.h).
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <vector>

#include "client/image_trainer.h"
#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"

namespace ml = sotto::ml;
using sotto::model::ModelParameters;

namespace {

constexpr int kPixels = 28 * 28;
constexpr int kClasses = 10;

// Two patterned images, labels 3 and 7.
sotto::data::ImageDataset two_images() {
  sotto::data::ImageDataset d;
  d.rows = d.cols = 28;
  d.labels = {3, 7};
  d.pixels.resize(2 * kPixels);
  for (int i = 0; i < 2 * kPixels; ++i)
    d.pixels[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((i * 37 + i / 5) % 256);
  return d;
}

double normalised(std::uint8_t p) {
  return static_cast<double>((static_cast<float>(p) / 255.0f - 0.2860f) / 0.3530f);
}

// One full-batch SGD step's gradient of the mean cross-entropy for fc.weight [10, 784] and fc.bias [10].
void cross_entropy_gradient(const sotto::data::ImageDataset& d, const ModelParameters& m, std::vector<double>& grad_w,
                            std::vector<double>& grad_b) {
  const auto w = m.find("fc.weight")->as<float>();
  const auto b = m.find("fc.bias")->as<float>();
  grad_w.assign(kClasses * kPixels, 0);
  grad_b.assign(kClasses, 0);
  for (std::size_t n = 0; n < d.size(); ++n) {
    std::vector<double> z(kClasses);
    for (int c = 0; c < kClasses; ++c) {
      z[c] = b[c];
      for (int k = 0; k < kPixels; ++k) z[c] += w[c * kPixels + k] * normalised(d.pixels[n * kPixels + k]);
    }
    double top = z[0], sum = 0;
    for (double v : z) top = std::max(top, v);
    for (double& v : z) sum += (v = std::exp(v - top));
    for (int c = 0; c < kClasses; ++c) {
      const double g = (z[c] / sum - (c == d.labels[n] ? 1.0 : 0.0)) / static_cast<double>(d.size());
      grad_b[c] += g;
      for (int k = 0; k < kPixels; ++k) grad_w[c * kPixels + k] += g * normalised(d.pixels[n * kPixels + k]);
    }
  }
}

ml::TrainingPlan one_full_batch_step() {
  ml::TrainingPlan plan;
  plan.batch_size = 2;
  plan.momentum = 0;
  plan.learning_rate = 0.1;
  return plan;
}

ModelParameters shifted(ModelParameters m, float by) {
  for (auto& t : m.mutable_tensors()) {
    for (float& v : t.as_mutable<float>()) v += by;
  }
  return m;
}

// A trainer on the two images, and the global model it is given.
struct TwoImageDevice {
  std::shared_ptr<const sotto::data::ImageDataset> data = std::make_shared<sotto::data::ImageDataset>(two_images());
  sotto::client::ImageTrainer trainer{ml::make_image_model("fashion_linear", 2), data, {0, 1}};
  ModelParameters global = ml::make_image_model("fashion_linear", 1)->parameters();
  sotto::client::TrainingControl control;
};

// One SGD step on `m` with the hand-computed gradient: the tensors named in `step` move, the others stay.
ModelParameters sgd_step(const sotto::data::ImageDataset& d, ModelParameters m, bool weight, bool bias, double pull = 0,
                         const ModelParameters* anchor = nullptr) {
  std::vector<double> grad_w, grad_b;
  cross_entropy_gradient(d, m, grad_w, grad_b);
  const auto step = [&](const char* name, const std::vector<double>& grad) {
    auto values = m.mutable_tensors()[m.find(name) - m.tensors().data()].as_mutable<float>();
    const auto toward = anchor ? anchor->find(name)->as<float>() : values;
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] = static_cast<float>(values[i] - 0.1 * (grad[i] + pull * (values[i] - toward[i])));
    }
  };
  if (weight) step("fc.weight", grad_w);
  if (bias) step("fc.bias", grad_b);
  return m;
}

void require_close(const ModelParameters& a, const ModelParameters& b) {
  for (std::size_t t = 0; t < a.size(); ++t) {
    const auto x = a.tensors()[t].as<float>(), y = b.tensors()[t].as<float>();
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == Approx(y[i]).margin(1e-6));
  }
}

}  // namespace

TEST_CASE("the proximal term pulls toward the given anchor: w - lr (grad + lambda (w - anchor))", "[ml][personal]") {
  const auto data = two_images();
  auto model = ml::make_image_model("fashion_linear", 1);
  const ModelParameters w0 = model->parameters();
  ml::TrainingPlan plan = one_full_batch_step();
  plan.proximal_mu = 0.5;
  plan.proximal_anchor = std::make_shared<const ModelParameters>(shifted(w0, 0.01f));
  model->train(data, std::vector<std::uint32_t>{0, 1}, plan);
  require_close(model->parameters(), sgd_step(data, w0, true, true, 0.5, plan.proximal_anchor.get()));
}

TEST_CASE("frozen tensors stay bit for bit while the others take their plain SGD step", "[ml][personal]") {
  const auto data = two_images();
  const std::vector<std::uint32_t> both{0, 1};
  auto model = ml::make_image_model("fashion_linear", 1);
  const ModelParameters w0 = model->parameters();
  ml::TrainingPlan plan = one_full_batch_step();
  plan.frozen = {"fc.w*"};
  model->train(data, both, plan);
  CHECK(model->parameters().find("fc.weight")->data == w0.find("fc.weight")->data);
  require_close(model->parameters(), sgd_step(data, w0, false, true));
  // And the other way round: the bias frozen, the weights trained.
  auto other = ml::make_image_model("fashion_linear", 1);
  plan.frozen = {"*.bias"};
  other->train(data, both, plan);
  CHECK(other->parameters().find("fc.bias")->data == w0.find("fc.bias")->data);
  require_close(other->parameters(), sgd_step(data, w0, true, false));
}

TEST_CASE("FedRep's schedule: the personal head first with the body frozen, then the body with the head frozen",
          "[ml][personal]") {
  TwoImageDevice device;
  ml::TrainingPlan plan = one_full_batch_step();
  plan.personal = {"fc.bias"};
  plan.head_epochs = 1;
  // The aggregator sends the federated weight alone; the device's bias is its own (seed 2).
  const ModelParameters federated({device.global.tensors()[0]});
  const auto result = device.trainer.fit(federated, plan, device.control);
  ModelParameters start = device.global;
  start.mutable_tensors()[1] = ml::make_image_model("fashion_linear", 2)->parameters().tensors()[1];
  const ModelParameters after_head = sgd_step(*device.data, start, false, true);
  require_close(result.local_model, sgd_step(*device.data, after_head, true, false));
  CHECK_FALSE(result.personal_model);
}

TEST_CASE("fine-tuning adapts a copy of the global model and leaves the update as it was", "[ml][personal]") {
  TwoImageDevice device;
  ml::TrainingPlan plan = one_full_batch_step();
  plan.finetune_epochs = 2;
  const auto result = device.trainer.fit(device.global, plan, device.control);
  const ModelParameters trained = sgd_step(*device.data, device.global, true, true);
  require_close(result.local_model, trained);
  REQUIRE(result.personal_model);
  require_close(*result.personal_model, sgd_step(*device.data, trained, true, true));  // two epochs from global
}

TEST_CASE("Ditto's personal model goes on from its last value, pulled toward the global model by lambda",
          "[ml][personal]") {
  TwoImageDevice device;
  ml::TrainingPlan plan = one_full_batch_step();
  plan.ditto_lambda = 2.0;
  // Without a personal model yet it starts from the global model, where the pull is zero.
  const auto first = device.trainer.fit(device.global, plan, device.control);
  REQUIRE(first.personal_model);
  require_close(*first.personal_model, sgd_step(*device.data, device.global, true, true));
  // Restored (as after a restart) from a model away from the global one: the pull lambda (v - w) joins the step.
  const ModelParameters kept = shifted(device.global, 0.05f);
  device.trainer.restore_personal_model(kept);
  const auto second = device.trainer.fit(device.global, plan, device.control);
  require_close(*second.personal_model, sgd_step(*device.data, kept, true, true, 2.0, &device.global));
  require_close(second.local_model, sgd_step(*device.data, device.global, true, true));  // the update is FedAvg's
}

TEST_CASE("the device measures the global model and its personal model on its held-out examples", "[ml][personal]") {
  auto data = std::make_shared<sotto::data::ImageDataset>(two_images());
  sotto::client::ImageTrainer trainer(ml::make_image_model("fashion_linear", 2), data, {0, 1}, {1});
  const ModelParameters global = ml::make_image_model("fashion_linear", 1)->parameters();
  ml::TrainingPlan plan = one_full_batch_step();
  plan.finetune_epochs = 3;
  sotto::client::TrainingControl control;
  const auto result = trainer.fit(global, plan, control);
  REQUIRE(result.local_evaluation);
  CHECK(result.local_evaluation->examples == 1);
  // Against the same models evaluated on the held-out image (the second, label 7) by themselves.
  sotto::data::ImageDataset held;
  held.rows = held.cols = 28;
  held.labels = {data->labels[1]};
  held.pixels.assign(data->pixels.begin() + kPixels, data->pixels.end());
  auto check = ml::make_image_model("fashion_linear", 3);
  check->load(global);
  CHECK(result.local_evaluation->global_accuracy == check->evaluate(held).accuracy);
  check->load(*result.personal_model);
  CHECK(result.local_evaluation->personal_accuracy == check->evaluate(held).accuracy);
  // Without held-out examples there is nothing to report.
  sotto::client::ImageTrainer plain(ml::make_image_model("fashion_linear", 2), data, {0, 1});
  CHECK_FALSE(plain.fit(global, plan, control).local_evaluation);
}
