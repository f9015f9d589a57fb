// Tests for the built-in image model: seeded initialisation, training on real Fashion-MNIST, determinism, errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "common/util/error.h"

using sotto::data::ImageDataset;
using sotto::ml::make_image_model;
using sotto::ml::TrainingPlan;

namespace {

const ImageDataset& train_set() {
  static const ImageDataset ds =
      sotto::data::load_fashion_mnist(sotto::data::kDefaultFashionMnistDir, sotto::data::Split::kTrain);
  return ds;
}

const ImageDataset& test_set() {
  static const ImageDataset ds =
      sotto::data::load_fashion_mnist(sotto::data::kDefaultFashionMnistDir, sotto::data::Split::kTest);
  return ds;
}

std::vector<std::uint32_t> first_n(std::uint32_t n) {
  std::vector<std::uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

// Names of the tensors whose bytes are identical in a and b (same layout assumed).
std::vector<std::string> unchanged_tensors(const sotto::model::ModelParameters& a,
                                           const sotto::model::ModelParameters& b) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.tensors()[i].data == b.tensors()[i].data) names.push_back(a.tensors()[i].name);
  }
  return names;
}

}  // namespace

TEST_CASE("fashion_cnn is a known architecture and exposes its layers by name", "[ml][model]") {
  REQUIRE(sotto::ml::known_architectures() ==
          std::vector<std::string>{"fashion_cnn", "fashion_linear", "fashion_wide_mlp"});
  const auto params = make_image_model("fashion_cnn", 0)->parameters();
  std::vector<std::string> names;
  for (const auto& t : params.tensors()) names.push_back(t.name);
  REQUIRE(names == std::vector<std::string>{
                       "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "conv2.weight", "conv2.bias",
                       "bn2.weight", "bn2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                       "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "bn2.running_mean",
                       "bn2.running_var", "bn2.num_batches_tracked"});
  REQUIRE(params.find("conv1.weight")->shape == std::vector<std::int64_t>{16, 1, 5, 5});
  REQUIRE(params.find("conv2.weight")->shape == std::vector<std::int64_t>{32, 16, 5, 5});
  REQUIRE(params.find("fc1.weight")->shape == std::vector<std::int64_t>{128, 512});
  REQUIRE(params.find("fc2.weight")->shape == std::vector<std::int64_t>{10, 128});
  REQUIRE(params.find("bn2.num_batches_tracked")->dtype == sotto::model::DType::kInt64);
}

TEST_CASE("fashion_wide_mlp has the 30.3M parameters of the big-model benchmarks", "[ml][model]") {
  const auto params = make_image_model("fashion_wide_mlp", 0)->parameters();
  std::uint64_t count = 0;
  for (const auto& t : params.tensors()) count += static_cast<std::uint64_t>(t.num_elements());
  CHECK(count == 784 * 5120 + 5120 + 5120 * 5120 + 5120 + 5120 * 10 + 10);
  CHECK(params.total_bytes() == 4 * count);
  CHECK(params.find("fc2.weight")->shape == std::vector<std::int64_t>{5120, 5120});
}

TEST_CASE("fashion_linear is logistic regression on the pixels and learns from one epoch", "[ml][model][train]") {
  auto model = make_image_model("fashion_linear", 1);
  const auto params = model->parameters();
  REQUIRE(params.size() == 2);
  REQUIRE(params.find("fc.weight")->shape == std::vector<std::int64_t>{10, 784});
  REQUIRE(params.find("fc.bias")->shape == std::vector<std::int64_t>{10});
  const auto before = model->evaluate(test_set(), 1000);
  TrainingPlan plan;
  plan.learning_rate = 0.01;
  plan.seed = 3;
  model->train(train_set(), first_n(1000), plan);
  const auto after = model->evaluate(test_set(), 1000);
  CAPTURE(before.accuracy, after.accuracy);
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > 0.5);
}

TEST_CASE("training stops before the batch next_batch refuses", "[ml][model][train]") {
  auto model = make_image_model("fashion_linear", 1);
  TrainingPlan plan;
  plan.seed = 3;
  int asked = 0;
  const auto metrics = model->train(train_set(), first_n(1000), plan, [&] { return ++asked <= 3; });
  CHECK(asked == 4);
  CHECK(metrics.steps == 3);
}

TEST_CASE("make_image_model rejects an unknown architecture and lists the known ones", "[ml][model]") {
  REQUIRE_THROWS_AS(make_image_model("resnet50", 0), sotto::Error);
  REQUIRE_THROWS_WITH(make_image_model("resnet50", 0), Catch::Contains("'resnet50'") && Catch::Contains("fashion_cnn"));
}

TEST_CASE("make_image_model initialises identically for a seed and differently across seeds", "[ml][model]") {
  const auto a = make_image_model("fashion_cnn", 17)->parameters();
  const auto b = make_image_model("fashion_cnn", 17)->parameters();
  const auto c = make_image_model("fashion_cnn", 18)->parameters();
  REQUIRE(a == b);
  REQUIRE_FALSE(a == c);
  // Every randomly initialised tensor differs across seeds.
  for (const std::string name : {"conv1.weight", "conv1.bias", "conv2.weight", "fc1.weight", "fc2.bias"}) {
    CAPTURE(name);
    REQUIRE(a.find(name)->data != c.find(name)->data);
  }
}

TEST_CASE("one epoch on 1000 Fashion-MNIST examples beats chance on the test set", "[ml][model][train]") {
  auto model = make_image_model("fashion_cnn", 1);
  const auto before = model->evaluate(test_set(), 1000);
  REQUIRE(before.num_examples == 1000);
  REQUIRE(before.accuracy < 0.3);

  TrainingPlan plan;
  plan.learning_rate = 0.01;
  plan.seed = 3;
  const auto metrics = model->train(train_set(), first_n(1000), plan);
  CHECK(metrics.num_examples == 1000);
  CHECK(metrics.steps == 32);  // ceil(1000 / 32)
  CHECK(std::isfinite(metrics.mean_loss));
  CHECK(metrics.accuracy > 0.3);
  CHECK(metrics.seconds > 0);

  const auto after = model->evaluate(test_set(), 1000);
  CAPTURE(before.loss, before.accuracy, after.loss, after.accuracy, metrics.mean_loss, metrics.seconds);
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > 0.45);  // chance is 0.1; this run reaches about 0.6
  REQUIRE_FALSE(model->parameters().first_non_finite());
}

TEST_CASE("training is deterministic for a seed and depends on it", "[ml][model][train]") {
  const auto indices = first_n(300);
  TrainingPlan plan;
  plan.epochs = 2;
  plan.seed = 11;
  auto a = make_image_model("fashion_cnn", 5);
  auto b = make_image_model("fashion_cnn", 5);
  const auto ma = a->train(train_set(), indices, plan);
  const auto mb = b->train(train_set(), indices, plan);
  REQUIRE(a->parameters() == b->parameters());
  REQUIRE(ma.mean_loss == mb.mean_loss);
  REQUIRE(ma.accuracy == mb.accuracy);

  plan.seed = 12;
  auto c = make_image_model("fashion_cnn", 5);
  c->train(train_set(), indices, plan);
  REQUIRE_FALSE(c->parameters() == a->parameters());
}

TEST_CASE("two threads training at once get the models that one thread gets", "[ml][model][train]") {
  // The simulator trains clients on a pool of threads. A BLAS that is unsafe to call concurrently (Debian's
  // sequential OpenBLAS has no locking) makes results vary from run to run; concurrent_training_hazard() names it.
  REQUIRE_FALSE(sotto::ml::concurrent_training_hazard().has_value());
  // LibTorch's and OpenBLAS's thread counts are process-wide, and a different count can change the order of a
  // sum: the lone runs and the concurrent ones use the same one (as sotto-sim's workers do), set before either.
  sotto::ml::set_torch_threads(1);
  TrainingPlan plan;
  plan.seed = 3;
  const auto left = first_n(200);
  std::vector<std::uint32_t> right(200);
  std::iota(right.begin(), right.end(), 1000u);
  auto train_alone = [&](const std::vector<std::uint32_t>& indices) {
    auto m = make_image_model("fashion_cnn", 2);
    m->train(train_set(), indices, plan);
    return m->parameters();
  };
  const auto expected_left = train_alone(left);
  const auto expected_right = train_alone(right);
  for (int attempt = 0; attempt < 4; ++attempt) {
    sotto::model::ModelParameters got_left, got_right;
    std::thread t([&] { got_left = train_alone(left); });
    got_right = train_alone(right);
    t.join();
    CHECK(got_left == expected_left);
    CHECK(got_right == expected_right);
  }
}

TEST_CASE("training changes every parameter and buffer, and load restores them exactly", "[ml][model][train]") {
  auto model = make_image_model("fashion_cnn", 2);
  const auto initial = model->parameters();
  TrainingPlan plan;
  plan.batch_size = 50;
  model->train(train_set(), first_n(200), plan);
  const auto trained = model->parameters();
  // A convolution bias followed by BatchNorm has a zero gradient in exact arithmetic (BN subtracts the channel
  // mean), so it moves by rounding noise only; every other parameter and every buffer must change.
  std::vector<std::string> unchanged = unchanged_tensors(initial, trained);
  std::erase_if(unchanged, [](const std::string& n) { return n == "conv1.bias" || n == "conv2.bias"; });
  REQUIRE(unchanged.empty());
  REQUIRE(trained.find("bn1.num_batches_tracked")->as<std::int64_t>()[0] == 4);

  model->load(initial);
  REQUIRE(model->parameters() == initial);
  auto fresh = make_image_model("fashion_cnn", 99);
  fresh->load(trained);
  REQUIRE(fresh->parameters() == trained);
}

TEST_CASE("Adam trains too and the plan's settings are checked", "[ml][model][train]") {
  auto model = make_image_model("fashion_cnn", 4);
  TrainingPlan plan;
  plan.optimizer = "adam";
  plan.learning_rate = 0.001;
  plan.batch_size = 64;
  const auto before = model->evaluate(test_set(), 500);
  model->train(train_set(), first_n(1000), plan);
  const auto after = model->evaluate(test_set(), 500);
  CAPTURE(before.loss, after.loss, after.accuracy);
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > 0.5);

  const auto params = model->parameters();
  TrainingPlan bad;
  bad.optimizer = "rmsprop";
  REQUIRE_THROWS_WITH(model->train(train_set(), first_n(10), bad),
                      Catch::Contains("'rmsprop'") && Catch::Contains("sgd") && Catch::Contains("adam"));
  bad = TrainingPlan{};
  bad.batch_size = 0;
  REQUIRE_THROWS_WITH(model->train(train_set(), first_n(10), bad), Catch::Contains("batch_size"));
  bad = TrainingPlan{};
  bad.learning_rate = -1;
  REQUIRE_THROWS_WITH(model->train(train_set(), first_n(10), bad), Catch::Contains("learning_rate"));
  REQUIRE(model->parameters() == params);
}

TEST_CASE("train on no examples returns zeros and changes nothing", "[ml][model][train]") {
  auto model = make_image_model("fashion_cnn", 6);
  const auto params = model->parameters();
  const auto m = model->train(train_set(), {}, TrainingPlan{});
  CHECK(m.num_examples == 0);
  CHECK(m.steps == 0);
  CHECK(m.mean_loss == 0);
  CHECK(m.accuracy == 0);
  REQUIRE(model->parameters() == params);
}

TEST_CASE("train and evaluate reject bad indices and images of the wrong size", "[ml][model]") {
  auto model = make_image_model("fashion_cnn", 7);
  const std::vector<std::uint32_t> out_of_range = {0, 1, 60000};
  REQUIRE_THROWS_WITH(model->train(train_set(), out_of_range, TrainingPlan{}),
                      Catch::Contains("60000") && Catch::Contains("out of range"));

  ImageDataset small;
  small.rows = 8;
  small.cols = 8;
  small.pixels.assign(2 * 64, 0);
  small.labels = {1, 2};
  REQUIRE_THROWS_WITH(model->evaluate(small), Catch::Contains("28x28") && Catch::Contains("8x8"));
  REQUIRE_THROWS_WITH(model->train(small, first_n(2), TrainingPlan{}), Catch::Contains("28x28"));
}

TEST_CASE("batches evaluated in ranges combine to evaluate's result bit for bit", "[ml][model]") {
  auto model = make_image_model("fashion_cnn", 4);
  const auto whole = model->evaluate(test_set(), 1000);
  auto first = model->evaluate_batches(test_set(), 0, 640);
  const auto second = model->evaluate_batches(test_set(), 640, 1000);
  first.insert(first.end(), second.begin(), second.end());
  const auto combined = sotto::ml::combine_batches(first);
  CHECK(combined.num_examples == 1000);
  CHECK(combined.loss == whole.loss);
  CHECK(combined.accuracy == whole.accuracy);
  CHECK(model->evaluate_batches(test_set(), 1000, 1000).empty());
}

TEST_CASE("evaluate covers the first max_examples examples, or all", "[ml][model]") {
  ImageDataset head;  // the first 700 test examples
  head.rows = test_set().rows;
  head.cols = test_set().cols;
  head.labels.assign(test_set().labels.begin(), test_set().labels.begin() + 700);
  head.pixels.assign(test_set().pixels.begin(), test_set().pixels.begin() + 700 * 784);

  auto model = make_image_model("fashion_cnn", 8);
  const auto some = model->evaluate(head, 300);
  CHECK(some.num_examples == 300);
  const auto too_many = model->evaluate(head, 5000);
  CHECK(too_many.num_examples == 700);
  const auto all = model->evaluate(head);
  CHECK(all.num_examples == 700);
  CHECK(all.loss == Approx(too_many.loss));
  CHECK(all.accuracy == too_many.accuracy);
  CHECK(all.accuracy >= 0);
  CHECK(all.accuracy <= 1);
  CHECK(std::isfinite(all.loss));
  // The first 300 of the full test set give what the first 300 of its head give.
  const auto same_prefix = model->evaluate(test_set(), 300);
  CHECK(same_prefix.loss == Approx(some.loss));
  CHECK(same_prefix.accuracy == some.accuracy);
  // Evaluation is read-only: it does not update the BatchNorm statistics.
  const auto params = model->parameters();
  model->evaluate(head, 100);
  REQUIRE(model->parameters() == params);
  ImageDataset empty;
  CHECK(model->evaluate(empty).num_examples == 0);
}

TEST_CASE("load rejects parameters of another layout, naming the tensor", "[ml][model]") {
  auto model = make_image_model("fashion_cnn", 9);
  auto params = model->parameters();
  auto& t = params.mutable_tensors()[0];
  t.shape = {16, 25};
  REQUIRE_THROWS_WITH(model->load(params), Catch::Contains("'conv1.weight'") && Catch::Contains("[16, 25]") &&
                                               Catch::Contains("[16, 1, 5, 5]"));
}

namespace {

// L2 distance between the trainable parameters of a and b (BatchNorm's running statistics and step counters are
// buffers, which the proximal term does not touch, and are left out).
double parameter_distance(const sotto::model::ModelParameters& a, const sotto::model::ModelParameters& b) {
  double sum = 0;
  for (std::size_t t = 0; t < a.size(); ++t) {
    const auto& name = a.tensors()[t].name;
    if (name.find("running_") != std::string::npos || name.find("num_batches_tracked") != std::string::npos) continue;
    const auto x = a.tensors()[t].as<float>();
    const auto y = b.tensors()[t].as<float>();
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
      sum += d * d;
    }
  }
  return std::sqrt(sum);
}

}  // namespace

TEST_CASE("FedProx: a large proximal_mu keeps the trained model closer to where it started", "[ml][model][train]") {
  const auto indices = first_n(300);
  TrainingPlan plan;
  plan.epochs = 2;
  plan.seed = 11;
  auto plain = make_image_model("fashion_cnn", 5);
  auto prox = make_image_model("fashion_cnn", 5);
  const auto start = plain->parameters();
  REQUIRE(prox->parameters() == start);

  plain->train(train_set(), indices, plan);
  plan.proximal_mu = 10.0;
  const auto m = prox->train(train_set(), indices, plan);
  const double plain_distance = parameter_distance(plain->parameters(), start);
  const double prox_distance = parameter_distance(prox->parameters(), start);
  CAPTURE(plain_distance, prox_distance, m.mean_loss);
  CHECK(std::isfinite(m.mean_loss));
  CHECK(prox_distance > 0);
  CHECK(prox_distance < 0.5 * plain_distance);
  REQUIRE_FALSE(prox->parameters().first_non_finite());

  // Deterministic with the term too; and a negative or non-finite mu is refused by name, changing nothing.
  auto again = make_image_model("fashion_cnn", 5);
  again->train(train_set(), indices, plan);
  REQUIRE(again->parameters() == prox->parameters());
  const auto before = again->parameters();
  plan.proximal_mu = -1;
  REQUIRE_THROWS_WITH(again->train(train_set(), first_n(10), plan), Catch::Contains("proximal_mu"));
  plan.proximal_mu = std::nan("");
  REQUIRE_THROWS_WITH(again->train(train_set(), first_n(10), plan), Catch::Contains("proximal_mu"));
  REQUIRE(again->parameters() == before);
}
