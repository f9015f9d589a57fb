// Tests for the torch bridge: exact round trips of parameters and buffers, and clear errors on any mismatch.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "common/ml/image_model.h"
#include "common/ml/torch_bridge.h"
#include "common/util/error.h"

using sotto::model::DType;
using sotto::model::ModelParameters;
using sotto::model::Tensor;

namespace {

// A module with a submodule, a parameter of its own and buffers of every dtype ModelParameters can hold.
struct MixedImpl : torch::nn::Module {
  MixedImpl() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    scale = register_parameter("scale", torch::randn({4}));
    register_buffer("steps", torch::tensor(7, torch::kInt64));
    register_buffer("f64", torch::randn({2, 2}, torch::kFloat64));
    register_buffer("i32", torch::arange(6, torch::kInt32).reshape({2, 3}));
    register_buffer("u8", torch::arange(250, 256, torch::kInt32).to(torch::kUInt8));
    register_buffer("i8", torch::arange(-3, 3, torch::kInt32).to(torch::kInt8));
    register_buffer("f16", torch::randn({3}).to(torch::kFloat16));
    register_buffer("bf16", torch::randn({3}).to(torch::kBFloat16));
    register_buffer("mask", torch::tensor({true, false, true}));
    register_buffer("empty", torch::zeros({0, 5}));
  }
  torch::nn::Linear fc{nullptr};
  torch::Tensor scale;
};
TORCH_MODULE(Mixed);

// Adds 1 (or flips, for bool) to every tensor of the module, parameters and buffers alike.
void perturb(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  auto bump = [](torch::Tensor t) {
    if (t.scalar_type() == torch::kBool) {
      t.logical_not_();
    } else {
      t.add_(1);
    }
  };
  for (auto& p : m.parameters()) bump(p);
  for (auto& b : m.buffers()) bump(b);
}

// A plain bool for Catch: glog's stl_logging.h (pulled in by LibTorch) cannot print a vector<std::byte>.
bool differ(const Tensor& a, const Tensor& b) { return a.data != b.data; }

std::string load_error(torch::nn::Module& m, const ModelParameters& params) {
  try {
    sotto::ml::import_module(m, params);
  } catch (const sotto::Error& e) {
    return e.what();
  }
  return "";
}

ModelParameters without(const ModelParameters& params, const std::string& name) {
  ModelParameters out;
  for (const auto& t : params.tensors()) {
    if (t.name != name) out.add(t);
  }
  return out;
}

ModelParameters replaced(const ModelParameters& params, const Tensor& replacement) {
  ModelParameters out;
  for (const auto& t : params.tensors()) out.add(t.name == replacement.name ? replacement : t);
  return out;
}

}  // namespace

TEST_CASE("export_module lists parameters then buffers with LibTorch's names, dtypes and shapes", "[ml][bridge]") {
  Mixed m;
  const ModelParameters p = sotto::ml::export_module(*m);
  std::vector<std::string> names;
  for (const auto& t : p.tensors()) names.push_back(t.name);
  REQUIRE(names == std::vector<std::string>{"scale", "fc.weight", "fc.bias", "steps", "f64", "i32", "u8", "i8", "f16",
                                            "bf16", "mask", "empty"});
  REQUIRE(p.find("fc.weight")->shape == std::vector<std::int64_t>{2, 3});
  REQUIRE(p.find("steps")->shape.empty());
  REQUIRE(p.find("steps")->dtype == DType::kInt64);
  REQUIRE(p.find("steps")->as<std::int64_t>()[0] == 7);
  REQUIRE(p.find("f64")->dtype == DType::kFloat64);
  REQUIRE(p.find("i32")->dtype == DType::kInt32);
  REQUIRE(p.find("u8")->dtype == DType::kUInt8);
  REQUIRE(p.find("i8")->dtype == DType::kInt8);
  REQUIRE(p.find("f16")->dtype == DType::kFloat16);
  REQUIRE(p.find("bf16")->dtype == DType::kBFloat16);
  REQUIRE(p.find("mask")->dtype == DType::kBool);
  REQUIRE(p.find("empty")->data.empty());
  const auto i32 = p.find("i32")->as<std::int32_t>();
  REQUIRE(std::vector<std::int32_t>(i32.begin(), i32.end()) == std::vector<std::int32_t>{0, 1, 2, 3, 4, 5});
  const auto u8 = p.find("u8")->as<std::uint8_t>();
  REQUIRE(std::vector<std::uint8_t>(u8.begin(), u8.end()) == std::vector<std::uint8_t>{250, 251, 252, 253, 254, 255});
  // The bytes are the tensor's own bytes.
  const torch::Tensor scale = m->scale.detach();
  REQUIRE(std::memcmp(p.find("scale")->data.data(), scale.data_ptr(), 4 * sizeof(float)) == 0);
}

TEST_CASE("export_module copies non-contiguous tensors in row-major order", "[ml][bridge]") {
  torch::nn::Module m;
  m.register_buffer("t", torch::arange(6, torch::kFloat32).reshape({2, 3}).t());
  const ModelParameters p = sotto::ml::export_module(m);
  REQUIRE(p.find("t")->shape == std::vector<std::int64_t>{3, 2});
  const auto v = p.find("t")->as<float>();
  REQUIRE(std::vector<float>(v.begin(), v.end()) == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("import_module round-trips every tensor of every dtype bit for bit", "[ml][bridge]") {
  Mixed m;
  const ModelParameters before = sotto::ml::export_module(*m);
  perturb(*m);
  const ModelParameters changed = sotto::ml::export_module(*m);
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (before.tensors()[i].data.empty()) continue;
    CAPTURE(before.tensors()[i].name);
    REQUIRE(differ(before.tensors()[i], changed.tensors()[i]));
  }
  sotto::ml::import_module(*m, before);
  REQUIRE(sotto::ml::export_module(*m) == before);
}

TEST_CASE("import_module round-trips every parameter and buffer of the fashion CNN bit for bit", "[ml][bridge]") {
  auto model = sotto::ml::make_image_model("fashion_cnn", 1);
  const ModelParameters before = model->parameters();
  // A different initialisation with different BatchNorm statistics stands in for any modification.
  auto other = sotto::ml::make_image_model("fashion_cnn", 2);
  ModelParameters modified = other->parameters();
  for (auto& t : modified.mutable_tensors()) {
    if (t.dtype == DType::kFloat32) {
      for (float& x : t.as_mutable<float>()) x = x * 0.5f + 0.25f;
    } else if (t.dtype == DType::kInt64) {
      for (auto& x : t.as_mutable<std::int64_t>()) x += 3;
    }
  }
  model->load(modified);
  const ModelParameters loaded = model->parameters();
  REQUIRE(loaded == modified);
  for (std::size_t i = 0; i < before.size(); ++i) {
    CAPTURE(before.tensors()[i].name);
    REQUIRE(differ(loaded.tensors()[i], before.tensors()[i]));
  }
  model->load(before);
  REQUIRE(model->parameters() == before);
}

TEST_CASE("import_module names the tensor and both shapes on a shape mismatch", "[ml][bridge]") {
  Mixed m;
  const ModelParameters good = sotto::ml::export_module(*m);
  Tensor wrong{"fc.weight", DType::kFloat32, {3, 2}, good.find("fc.weight")->data};
  const std::string message = load_error(*m, replaced(good, wrong));
  CHECK_THAT(message, Catch::Contains("'fc.weight'"));
  CHECK_THAT(message, Catch::Contains("shape"));
  CHECK_THAT(message, Catch::Contains("[3, 2]"));
  CHECK_THAT(message, Catch::Contains("[2, 3]"));
}

TEST_CASE("import_module names the tensor and both dtypes on a dtype mismatch", "[ml][bridge]") {
  Mixed m;
  const ModelParameters good = sotto::ml::export_module(*m);
  Tensor wrong{"scale", DType::kFloat64, {4}, std::vector<std::byte>(4 * sizeof(double))};
  const std::string message = load_error(*m, replaced(good, wrong));
  CHECK_THAT(message, Catch::Contains("'scale'"));
  CHECK_THAT(message, Catch::Contains("dtype"));
  CHECK_THAT(message, Catch::Contains("float64"));
  CHECK_THAT(message, Catch::Contains("float32"));
}

TEST_CASE("import_module names a missing tensor and an extra one", "[ml][bridge]") {
  Mixed m;
  const ModelParameters good = sotto::ml::export_module(*m);

  const std::string missing = load_error(*m, without(good, "steps"));
  CHECK_THAT(missing, Catch::Contains("'steps'"));
  CHECK_THAT(missing, Catch::Contains("missing"));

  ModelParameters extra = good;
  extra.add(Tensor{"fc.extra", DType::kFloat32, {1}, std::vector<std::byte>(sizeof(float))});
  const std::string unexpected = load_error(*m, extra);
  CHECK_THAT(unexpected, Catch::Contains("'fc.extra'"));
  CHECK_THAT(unexpected, Catch::Contains("not in the module"));
}

TEST_CASE("a failed import_module leaves the module unchanged", "[ml][bridge]") {
  Mixed m;
  const ModelParameters before = sotto::ml::export_module(*m);
  perturb(*m);
  ModelParameters other = sotto::ml::export_module(*m);
  other.add(Tensor{"zzz", DType::kFloat32, {1}, std::vector<std::byte>(sizeof(float))});
  sotto::ml::import_module(*m, before);
  REQUIRE_THROWS_AS(sotto::ml::import_module(*m, other), sotto::Error);
  REQUIRE(sotto::ml::export_module(*m) == before);
}

TEST_CASE("import_module accepts the tensors in any order", "[ml][bridge]") {
  Mixed m;
  const ModelParameters before = sotto::ml::export_module(*m);
  std::vector<Tensor> reversed(before.tensors().rbegin(), before.tensors().rend());
  perturb(*m);
  sotto::ml::import_module(*m, ModelParameters(std::move(reversed)));
  REQUIRE(sotto::ml::export_module(*m) == before);
}

TEST_CASE("export_module rejects a dtype ModelParameters cannot hold, naming the tensor", "[ml][bridge]") {
  torch::nn::Module m;
  m.register_buffer("phase", torch::zeros({2}, torch::kComplexFloat));
  REQUIRE_THROWS_WITH(sotto::ml::export_module(m), Catch::Contains("'phase'") && Catch::Contains("ComplexFloat"));
}

TEST_CASE("export_delta is subtract(export_module, base) bit for bit, for every arithmetic dtype", "[ml][bridge]") {
  torch::nn::Module m;
  m.register_module("fc", torch::nn::Linear(3, 2));
  m.register_buffer("steps", torch::tensor(7, torch::kInt64));
  m.register_buffer("f64", torch::randn({2, 2}, torch::kFloat64));
  m.register_buffer("i32", torch::arange(6, torch::kInt32).reshape({2, 3}));
  m.register_buffer("transposed", torch::randn({2, 3}).t());  // float32, not contiguous
  const ModelParameters base = sotto::ml::export_module(m);
  perturb(m);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m.parameters()) p.mul_(1.37).add_(0.001);  // differences that round
  }
  const ModelParameters delta = sotto::ml::export_delta(m, base);
  REQUIRE(delta == sotto::model::subtract(sotto::ml::export_module(m), base));
  REQUIRE(delta.find("steps")->as<std::int64_t>()[0] == 1);
}

TEST_CASE("export_delta names the tensor that differs from the base", "[ml][bridge]") {
  auto model = sotto::ml::make_image_model("fashion_cnn", 3);
  const ModelParameters base = model->parameters();
  const ModelParameters zero = model->delta_from(base);
  REQUIRE(zero.layout_mismatch(base) == std::nullopt);
  for (const auto& t : zero.tensors()) {
    for (std::byte b : t.data) REQUIRE(b == std::byte{0});  // a model minus itself: zeros (+0.0f, 0)
  }
  Tensor reshaped = base.tensors()[1];
  reshaped.shape = {reshaped.shape[0], 1};
  REQUIRE_THROWS_WITH(model->delta_from(replaced(base, reshaped)),
                      Catch::Contains("'" + reshaped.name + "'") && Catch::Contains("shape mismatch"));
  REQUIRE_THROWS_WITH(model->delta_from(without(base, base.tensors()[0].name)),
                      Catch::Contains("cannot compute the update"));
  std::vector<Tensor> renamed = base.tensors();
  std::swap(renamed[0], renamed[1]);
  REQUIRE_THROWS_WITH(model->delta_from(ModelParameters(renamed)),
                      Catch::Contains("cannot compute the update") && Catch::Contains("'" + base.tensors()[0].name + "'"));
}

TEST_CASE("set_torch_threads sets LibTorch's intra-op threads and rejects a count below one", "[ml][threads]") {
  REQUIRE_THROWS_AS(sotto::ml::set_torch_threads(0), sotto::Error);
  sotto::ml::set_torch_threads(2);
  CHECK(torch::get_num_threads() == 2);
  sotto::ml::set_torch_threads(1);  // a second call must not fail on the once-only inter-op setting
  CHECK(torch::get_num_threads() == 1);
}
