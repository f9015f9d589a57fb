#include "common/model/parameters.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/util/error.h"

namespace sotto::model {
namespace {

template <typename T>
constexpr DType dtype_for();
template <> constexpr DType dtype_for<float>() { return DType::kFloat32; }
template <> constexpr DType dtype_for<double>() { return DType::kFloat64; }
template <> constexpr DType dtype_for<std::int64_t>() { return DType::kInt64; }
template <> constexpr DType dtype_for<std::int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_for<std::uint8_t>() { return DType::kUInt8; }
template <> constexpr DType dtype_for<std::int8_t>() { return DType::kInt8; }

template <typename T>
Tensor tensor(const std::string& name, std::vector<std::int64_t> shape, const std::vector<T>& values) {
  Tensor t{name, dtype_for<T>(), std::move(shape), std::vector<std::byte>(values.size() * sizeof(T))};
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

// A 16-bit float tensor from raw bit patterns (little-endian on the wire and in memory).
Tensor tensor16(const std::string& name, DType dtype, const std::vector<std::uint16_t>& bits) {
  Tensor t{name, dtype, {static_cast<std::int64_t>(bits.size())}, {}};
  for (auto b : bits) {
    t.data.push_back(static_cast<std::byte>(b & 0xFF));
    t.data.push_back(static_cast<std::byte>(b >> 8));
  }
  return t;
}

template <typename T>
std::vector<T> values(const ModelParameters& p, const std::string& name) {
  const Tensor* t = p.find(name);
  REQUIRE(t);
  auto view = t->as<T>();
  return {view.begin(), view.end()};
}

ModelParameters two_layer() {
  std::vector<Tensor> ts;
  ts.push_back(tensor<float>("fc1.weight", {10, 4}, std::vector<float>(40, 0.5f)));
  ts.push_back(tensor<float>("fc1.bias", {10}, std::vector<float>(10, 0.0f)));
  return ModelParameters(std::move(ts));
}

}  // namespace

TEST_CASE("element_count multiplies the dimensions and refuses negative or overflowing shapes", "[model]") {
  CHECK(element_count({}) == 1);
  CHECK(element_count({3, 4, 5}) == 60);
  CHECK(element_count({3, 0, 5}) == 0);
  CHECK_THROWS_WITH(element_count({2, -1}), Catch::Contains("negative dimension") && Catch::Contains("[2, -1]"));
  CHECK_THROWS_WITH(element_count({1LL << 40, 1LL << 40}), Catch::Contains("overflows"));
  CHECK(shape_string({}) == "[]");
  CHECK(shape_string({10, 4}) == "[10, 4]");
}

TEST_CASE("ModelParameters refuses tensors that break its invariants", "[model]") {
  ModelParameters p = two_layer();
  CHECK_THROWS_WITH(p.add(tensor<float>("fc1.bias", {1}, {1.0f})), Catch::Contains("duplicate tensor name 'fc1.bias'"));
  CHECK_THROWS_WITH(p.add(tensor<float>("", {1}, {1.0f})), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(p.add(tensor<float>("short", {3}, {1.0f, 2.0f})),
                    Catch::Contains("tensor 'short' has 8 bytes") && Catch::Contains("[3]") &&
                        Catch::Contains("needs 12"));
  // 2^62 float64 elements need 2^65 bytes: the byte count must not wrap to 0 and pass for an empty tensor.
  CHECK_THROWS_WITH(p.add(Tensor{"huge", DType::kFloat64, {1LL << 62}, {}}), Catch::Contains("overflows"));
  CHECK(p.size() == 2);
  CHECK(p.total_bytes() == 200);
  CHECK(p.total_elements() == 50);
}

TEST_CASE("Tensor::as views the bytes as the tensor's own type and throws for any other", "[model]") {
  const Tensor t = tensor<float>("w", {3}, {1.5f, -2.0f, 3.25f});
  const auto view = t.as<float>();
  REQUIRE(view.size() == 3);
  CHECK(view[1] == -2.0f);
  CHECK_THROWS_AS(t.as<double>(), Error);
  CHECK_THROWS_WITH(t.as<std::int32_t>(), Catch::Contains("tensor 'w' holds float32, not int32"));
  Tensor mutable_t = t;
  CHECK_THROWS_WITH(mutable_t.as_mutable<std::uint8_t>(), Catch::Contains("not uint8"));
  mutable_t.as_mutable<float>()[0] = 7.0f;
  CHECK(mutable_t.as<float>()[0] == 7.0f);
}

TEST_CASE("layout_mismatch is empty for the same layout whatever the values", "[model]") {
  ModelParameters a = two_layer();
  ModelParameters b = two_layer();
  b.mutable_tensors()[0].as_mutable<float>()[0] = 99.0f;
  CHECK_FALSE(a.layout_mismatch(b));
  CHECK_FALSE(a == b);
}

TEST_CASE("layout_mismatch names the first difference", "[model]") {
  const ModelParameters expected = two_layer();
  std::vector<Tensor> ts;

  SECTION("a missing tensor") {
    ts.push_back(tensor<float>("fc1.weight", {10, 4}, std::vector<float>(40)));
    CHECK(ModelParameters(std::move(ts)).layout_mismatch(expected) == "missing tensor 'fc1.bias'");
  }
  SECTION("an extra tensor") {
    ts = two_layer().tensors();
    ts.push_back(tensor<float>("fc2.bias", {2}, std::vector<float>(2)));
    CHECK(ModelParameters(std::move(ts)).layout_mismatch(expected) == "unexpected tensor 'fc2.bias'");
  }
  SECTION("a different shape") {
    ts.push_back(tensor<float>("fc1.weight", {10, 5}, std::vector<float>(50)));
    ts.push_back(tensor<float>("fc1.bias", {10}, std::vector<float>(10)));
    CHECK(ModelParameters(std::move(ts)).layout_mismatch(expected) ==
          "tensor 'fc1.weight': shape [10, 5], expected [10, 4]");
  }
  SECTION("a different dtype") {
    ts.push_back(tensor<float>("fc1.weight", {10, 4}, std::vector<float>(40)));
    ts.push_back(tensor<double>("fc1.bias", {10}, std::vector<double>(10)));
    CHECK(ModelParameters(std::move(ts)).layout_mismatch(expected) ==
          "tensor 'fc1.bias': dtype float64, expected float32");
  }
  SECTION("the same tensors in another order") {
    ts.push_back(tensor<float>("fc1.bias", {10}, std::vector<float>(10)));
    ts.push_back(tensor<float>("fc1.weight", {10, 4}, std::vector<float>(40)));
    CHECK(ModelParameters(std::move(ts)).layout_mismatch(expected) ==
          "tensor 'fc1.bias' at position 0, expected 'fc1.weight'");
  }
  SECTION("a repeated name slipped in through mutable_tensors") {
    ModelParameters p = two_layer();
    p.mutable_tensors().push_back(p.tensors()[1]);
    CHECK(p.layout_mismatch(expected) == "3 tensors, expected 2");
  }
}

TEST_CASE("first_non_finite names the tensor holding NaN or Inf", "[model]") {
  const float nan_f = std::numeric_limits<float>::quiet_NaN();
  const double inf_d = std::numeric_limits<double>::infinity();
  std::vector<Tensor> ts;
  ts.push_back(tensor<float>("ok", {2}, {1.0f, std::numeric_limits<float>::max()}));
  ts.push_back(tensor<std::int32_t>("count", {1}, {std::numeric_limits<std::int32_t>::max()}));

  SECTION("all finite") { CHECK_FALSE(ModelParameters(std::move(ts)).first_non_finite()); }
  SECTION("float32 NaN") {
    ts.push_back(tensor<float>("w", {3}, {0.0f, nan_f, 1.0f}));
    CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'w' contains NaN");
  }
  SECTION("float64 +Inf") {
    ts.push_back(tensor<double>("b", {2}, {inf_d, 0.0}));
    CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'b' contains Inf");
  }
  SECTION("float64 -Inf") {
    ts.push_back(tensor<double>("b", {1}, {-inf_d}));
    CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'b' contains Inf");
  }
  SECTION("the first offender is named") {
    ts.push_back(tensor<double>("first", {1}, {-inf_d}));
    ts.push_back(tensor<float>("second", {1}, {nan_f}));
    CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'first' contains Inf");
  }
  SECTION("float16 and bfloat16: finite extremes pass, NaN and Inf are found") {
    // float16: 0x7BFF is the largest finite, 0x7C00 +Inf, 0xFE00 a NaN. bfloat16: 0x7F7F largest, 0xFF80 -Inf.
    ts.push_back(tensor16("h_ok", DType::kFloat16, {0x0000, 0x7BFF, 0xFBFF, 0x0001}));
    ts.push_back(tensor16("b_ok", DType::kBFloat16, {0x7F7F, 0x3F80, 0x0001}));
    SECTION("finite") { CHECK_FALSE(ModelParameters(std::move(ts)).first_non_finite()); }
    SECTION("float16 Inf") {
      ts.push_back(tensor16("h", DType::kFloat16, {0x3C00, 0x7C00}));
      CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'h' contains Inf");
    }
    SECTION("float16 NaN") {
      ts.push_back(tensor16("h", DType::kFloat16, {0xFE00}));
      CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'h' contains NaN");
    }
    SECTION("bfloat16 -Inf") {
      ts.push_back(tensor16("b", DType::kBFloat16, {0xFF80}));
      CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'b' contains Inf");
    }
    SECTION("bfloat16 NaN") {
      ts.push_back(tensor16("b", DType::kBFloat16, {0x7FC0}));
      CHECK(ModelParameters(std::move(ts)).first_non_finite() == "tensor 'b' contains NaN");
    }
  }
}

TEST_CASE("add and subtract work elementwise in each tensor's own type", "[model]") {
  std::vector<Tensor> xs, ys;
  xs.push_back(tensor<float>("f", {3}, {1.5f, -2.0f, 0.25f}));
  ys.push_back(tensor<float>("f", {3}, {0.5f, 4.0f, 0.25f}));
  xs.push_back(tensor<double>("d", {2}, {1e300, 0.1}));
  ys.push_back(tensor<double>("d", {2}, {1e300, 0.2}));
  xs.push_back(tensor<std::int64_t>("l", {2}, {(1LL << 60) + 1, -5}));
  ys.push_back(tensor<std::int64_t>("l", {2}, {1, 7}));
  xs.push_back(tensor<std::int32_t>("i", {2}, {100, -100}));
  ys.push_back(tensor<std::int32_t>("i", {2}, {-1, 1}));
  xs.push_back(tensor<std::uint8_t>("u", {2}, {250, 3}));
  ys.push_back(tensor<std::uint8_t>("u", {2}, {10, 5}));
  xs.push_back(tensor<std::int8_t>("s", {2}, {100, -100}));
  ys.push_back(tensor<std::int8_t>("s", {2}, {27, 28}));
  xs.push_back(tensor<float>("none", {0}, {}));
  ys.push_back(tensor<float>("none", {0}, {}));
  const ModelParameters x(std::move(xs)), y(std::move(ys));

  const ModelParameters sum = add(x, y);
  CHECK_FALSE(sum.layout_mismatch(x));
  CHECK(values<float>(sum, "f") == std::vector<float>{2.0f, 2.0f, 0.5f});
  CHECK(values<double>(sum, "d") == std::vector<double>{2e300, 0.1 + 0.2});
  CHECK(values<std::int64_t>(sum, "l") == std::vector<std::int64_t>{(1LL << 60) + 2, 2});
  CHECK(values<std::int32_t>(sum, "i") == std::vector<std::int32_t>{99, -99});
  CHECK(values<std::uint8_t>(sum, "u") == std::vector<std::uint8_t>{4, 8});  // 260 wraps to 4
  CHECK(values<std::int8_t>(sum, "s") == std::vector<std::int8_t>{127, -72});

  const ModelParameters diff = subtract(x, y);
  CHECK(values<float>(diff, "f") == std::vector<float>{1.0f, -6.0f, 0.0f});
  CHECK(values<double>(diff, "d") == std::vector<double>{0.0, 0.1 - 0.2});
  CHECK(values<std::int64_t>(diff, "l") == std::vector<std::int64_t>{1LL << 60, -12});
  CHECK(values<std::int32_t>(diff, "i") == std::vector<std::int32_t>{101, -101});
  CHECK(values<std::uint8_t>(diff, "u") == std::vector<std::uint8_t>{240, 254});  // 3 - 5 wraps to 254
  CHECK(values<std::int8_t>(diff, "s") == std::vector<std::int8_t>{73, -128});

  // The one-pair form gives the same tensors.
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(subtract(x.tensors()[i], y.tensors()[i]).data == diff.tensors()[i].data);
  }

  // x - y + y == x exactly for the integer tensors.
  CHECK(values<std::int64_t>(add(diff, y), "l") == values<std::int64_t>(x, "l"));
  CHECK(values<std::uint8_t>(add(diff, y), "u") == values<std::uint8_t>(x, "u"));
}

TEST_CASE("integer add and subtract wrap around instead of overflowing", "[model]") {
  constexpr auto max32 = std::numeric_limits<std::int32_t>::max();
  constexpr auto min32 = std::numeric_limits<std::int32_t>::min();
  constexpr auto max64 = std::numeric_limits<std::int64_t>::max();
  constexpr auto min64 = std::numeric_limits<std::int64_t>::min();
  std::vector<Tensor> xs, ys;
  xs.push_back(tensor<std::int32_t>("i", {2}, {max32, min32}));
  ys.push_back(tensor<std::int32_t>("i", {2}, {1, 1}));
  xs.push_back(tensor<std::int64_t>("l", {2}, {max64, min64}));
  ys.push_back(tensor<std::int64_t>("l", {2}, {1, 1}));
  const ModelParameters x(std::move(xs)), y(std::move(ys));
  CHECK(values<std::int32_t>(add(x, y), "i") == std::vector<std::int32_t>{min32, min32 + 1});
  CHECK(values<std::int32_t>(subtract(x, y), "i") == std::vector<std::int32_t>{max32 - 1, max32});
  CHECK(values<std::int64_t>(add(x, y), "l") == std::vector<std::int64_t>{min64, min64 + 1});
  CHECK(values<std::int64_t>(subtract(x, y), "l") == std::vector<std::int64_t>{max64 - 1, max64});
}

TEST_CASE("add and subtract refuse models of different layouts or non-arithmetic dtypes", "[model]") {
  std::vector<Tensor> other;
  other.push_back(tensor<float>("fc1.weight", {10, 4}, std::vector<float>(40)));
  const ModelParameters a = two_layer(), b(std::move(other));
  CHECK_THROWS_WITH(add(a, b), Catch::Contains("cannot add") && Catch::Contains("unexpected tensor 'fc1.bias'"));
  CHECK_THROWS_WITH(subtract(a, b), Catch::Contains("cannot subtract"));

  CHECK_THROWS_WITH(subtract(a.tensors()[1], b.tensors()[0]), Catch::Contains("cannot subtract tensor 'fc1.bias'") &&
                                                                Catch::Contains("[10]") && Catch::Contains("[10, 4]"));

  std::vector<Tensor> halves;
  halves.push_back(tensor16("h", DType::kFloat16, {0x3C00}));
  const ModelParameters h(std::move(halves));
  CHECK_THROWS_WITH(add(h, h), Catch::Contains("tensor 'h'") && Catch::Contains("float16") &&
                                   Catch::Contains("unsupported"));
}

TEST_CASE("ModelParameters compare equal only with identical names, dtypes, shapes and bytes", "[model]") {
  CHECK(two_layer() == two_layer());
  ModelParameters reshaped = two_layer();
  reshaped.mutable_tensors()[0].shape = {4, 10};
  CHECK_FALSE(reshaped == two_layer());
  ModelParameters renamed = two_layer();
  renamed.mutable_tensors()[1].name = "fc1.b";
  CHECK_FALSE(renamed == two_layer());
  CHECK_FALSE(ModelParameters() == two_layer());
  CHECK(ModelParameters() == ModelParameters());
}

}  // namespace sotto::model
