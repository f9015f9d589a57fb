// Tests for models authored in PyTorch: TorchScript files exported at test time by models/export_model.py
// (python3-torch), loaded, trained and saved through ml::load_torchscript_model, read back by PyTorch; and the
// errors for a wrong file, a module without forward(), a traced module and parameters that do not fit.
#include <catch2/catch.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "common/util/error.h"
#include "tests/support/test_support.h"

namespace ml = sotto::ml;
namespace test = sotto::test;
using sotto::data::ImageDataset;

namespace {

const ImageDataset& data_set(sotto::data::Split split) {
  static const ImageDataset train =
      sotto::data::load_fashion_mnist(sotto::data::kDefaultFashionMnistDir, sotto::data::Split::kTrain);
  static const ImageDataset test_split =
      sotto::data::load_fashion_mnist(sotto::data::kDefaultFashionMnistDir, sotto::data::Split::kTest);
  return split == sotto::data::Split::kTrain ? train : test_split;
}

std::vector<std::uint32_t> first_n(std::uint32_t n) {
  std::vector<std::uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

std::vector<std::string> names_of(const sotto::model::ModelParameters& params) {
  std::vector<std::string> names;
  for (const auto& t : params.tensors()) names.push_back(t.name);
  return names;
}

std::string load_error(const std::filesystem::path& file) {
  try {
    ml::load_torchscript_model(file);
  } catch (const sotto::Error& e) {
    return e.what();
  }
  return "(loaded)";
}

ml::TrainingPlan small_plan() {
  ml::TrainingPlan plan;
  plan.learning_rate = 0.02;
  plan.seed = 7;
  return plan;
}

}  // namespace

TEST_CASE("a scripted fashion_cnn has the built-in CNN's tensors and takes its weights bit for bit",
          "[ml][torchscript]") {
  test::TempDir dir("torchscript");
  auto scripted = ml::load_torchscript_model(test::export_torchscript(dir.path(), "fashion_cnn"));
  auto builtin = ml::make_image_model("fashion_cnn", 3);
  const auto weights = builtin->parameters();
  REQUIRE(names_of(scripted->parameters()) == names_of(weights));
  REQUIRE_FALSE(scripted->parameters().layout_mismatch(weights));
  scripted->load(weights);
  const auto back = scripted->parameters();
  for (std::size_t i = 0; i < weights.size(); ++i) CHECK(back.tensors()[i].data == weights.tensors()[i].data);
  // The same weights give the same evaluation through either module.
  const auto a = scripted->evaluate(data_set(sotto::data::Split::kTest), 500);
  const auto b = builtin->evaluate(data_set(sotto::data::Split::kTest), 500);
  CHECK(a.accuracy == b.accuracy);
  CHECK(a.loss == Approx(b.loss).epsilon(1e-5));
}

TEST_CASE("training a scripted model learns and matches the built-in module on the same weights",
          "[ml][torchscript][train]") {
  test::TempDir dir("torchscript");
  auto scripted = ml::load_torchscript_model(test::export_torchscript(dir.path(), "fashion_cnn"));
  auto builtin = ml::make_image_model("fashion_cnn", 3);
  builtin->load(scripted->parameters());
  const auto before = scripted->evaluate(data_set(sotto::data::Split::kTest), 1000);
  const auto indices = first_n(1000);
  const auto m = scripted->train(data_set(sotto::data::Split::kTrain), indices, small_plan());
  builtin->train(data_set(sotto::data::Split::kTrain), indices, small_plan());
  CHECK(m.num_examples == 1000);
  CHECK(m.steps == 32);
  const auto after = scripted->evaluate(data_set(sotto::data::Split::kTest), 1000);
  CHECK(after.accuracy > before.accuracy + 0.3);
  // The same arithmetic in LibTorch either way: the trained weights agree to float rounding.
  const auto s = scripted->parameters(), b = builtin->parameters();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.tensors()[i].dtype != sotto::model::DType::kFloat32) {
      CHECK(s.tensors()[i].data == b.tensors()[i].data);  // num_batches_tracked
      continue;
    }
    const auto x = s.tensors()[i].as<float>(), y = b.tensors()[i].as<float>();
    for (std::size_t k = 0; k < x.size(); ++k) REQUIRE(x[k] == Approx(y[k]).margin(1e-4));
  }
}

TEST_CASE("a model trained through Sotto reloads in PyTorch with the same outputs", "[ml][torchscript][train]") {
  test::TempDir dir("torchscript");
  auto model = ml::load_torchscript_model(test::export_torchscript(dir.path(), "fashion_mlp"));
  model->train(data_set(sotto::data::Split::kTrain), first_n(2000), small_plan());
  const auto trained = dir.path() / "trained.pt";
  model->save(trained);
  const auto ours = model->evaluate(data_set(sotto::data::Split::kTest), 1000);
  std::istringstream theirs(test::run_model_script({"evaluate", trained.string(), "--examples", "1000"}));
  double loss = 0, accuracy = 0;
  theirs >> loss >> accuracy;
  CHECK(accuracy == Approx(ours.accuracy).margin(1e-6));
  CHECK(loss == Approx(ours.loss).epsilon(1e-5));
  CHECK(ours.accuracy > 0.6);
  // Reloaded in C++, it carries the trained weights.
  const auto reloaded = ml::load_torchscript_model(trained)->parameters();
  for (std::size_t i = 0; i < reloaded.size(); ++i) {
    CHECK(reloaded.tensors()[i].data == model->parameters().tensors()[i].data);
  }
}

TEST_CASE("a scripted model evaluates in eval mode: dropout is off and results repeat", "[ml][torchscript]") {
  test::TempDir dir("torchscript");
  auto model = ml::load_torchscript_model(test::export_torchscript(dir.path(), "fashion_mlp"));
  const auto a = model->evaluate(data_set(sotto::data::Split::kTest), 300);
  const auto b = model->evaluate(data_set(sotto::data::Split::kTest), 300);
  CHECK(a.loss == b.loss);
  CHECK(a.accuracy == b.accuracy);
}

TEST_CASE("a traced module whose behaviour depends on train or eval mode is refused", "[ml][torchscript][errors]") {
  test::TempDir dir("torchscript");
  const std::string e = load_error(test::export_torchscript(dir.path(), "fashion_mlp", /*traced=*/true));
  CHECK_THAT(e, Catch::Contains("was saved with torch.jit.trace") && Catch::Contains("dropout") &&
                    Catch::Contains("torch.jit.script(model).save(FILE)"));
}

TEST_CASE("a wrong file or a module without forward is refused naming the file", "[ml][torchscript][errors]") {
  test::TempDir dir("torchscript");
  const auto missing = dir.path() / "missing.pt";
  CHECK_THAT(load_error(missing), Catch::Contains(missing.string()) && Catch::Contains("is not a file"));
  const auto garbage = dir.path() / "garbage.pt";
  test::write_file(garbage, "these bytes are not a TorchScript archive");
  CHECK_THAT(load_error(garbage), Catch::Contains("cannot load TorchScript model " + garbage.string()));
  const auto no_forward = dir.path() / "no_forward.pt";
  test::run_model_script({"export-without-forward", no_forward.string()});
  CHECK_THAT(load_error(no_forward), Catch::Contains(no_forward.string()) && Catch::Contains("has no forward()"));
}

TEST_CASE("parameters that do not fit a scripted model are refused naming the file and the tensor",
          "[ml][torchscript][errors]") {
  test::TempDir dir("torchscript");
  const auto file = test::export_torchscript(dir.path(), "fashion_mlp");
  auto model = ml::load_torchscript_model(file);
  const auto before = model->parameters();
  try {
    model->load(ml::make_image_model("fashion_linear", 1)->parameters());
    FAIL("loaded a fashion_linear model into fashion_mlp");
  } catch (const sotto::Error& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("the TorchScript model " + file.string()) && Catch::Contains("tensor 'body.1.weight'"));
  }
  // A refused load leaves the model as it was.
  for (std::size_t i = 0; i < before.size(); ++i)
    CHECK(model->parameters().tensors()[i].data == before.tensors()[i].data);
}

TEST_CASE("a scripted model with dropout trains deterministically for a seed, on one thread or two",
          "[ml][torchscript][train]") {
  test::TempDir dir("torchscript");
  const auto file = test::export_torchscript(dir.path(), "fashion_mlp");
  const auto trained = [&](std::uint64_t seed) {
    auto model = ml::load_torchscript_model(file);
    auto plan = small_plan();
    plan.seed = seed;
    model->train(data_set(sotto::data::Split::kTrain), first_n(300), plan);
    return model->parameters();
  };
  const auto a = trained(5);
  CHECK(trained(5).tensors()[0].data == a.tensors()[0].data);
  CHECK(trained(6).tensors()[0].data != a.tensors()[0].data);
  // Two threads at once draw dropout masks from LibTorch's one generator in turn, each from its own seed.
  sotto::model::ModelParameters x, y;
  std::thread first([&] { x = trained(5); });
  std::thread second([&] { y = trained(6); });
  first.join();
  second.join();
  CHECK(x.tensors()[0].data == a.tensors()[0].data);
  CHECK(y.tensors()[0].data == trained(6).tensors()[0].data);
}
