#include "common/codec/model_digest.h"

#include <catch2/catch.hpp>

#include <cstring>

namespace sotto::codec {
namespace {

model::ModelParameters one_tensor(const std::string& name, std::vector<std::int64_t> shape, std::vector<float> values) {
  model::Tensor t{name, model::DType::kFloat32, std::move(shape), std::vector<std::byte>(values.size() * sizeof(float))};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return model::ModelParameters({t});
}

}  // namespace

TEST_CASE("equal models have equal digests and any difference changes it", "[codec][digest]") {
  const auto base = one_tensor("w", {2, 2}, {1, 2, 3, 4});
  CHECK(model_digest(base) == model_digest(one_tensor("w", {2, 2}, {1, 2, 3, 4})));
  CHECK(model_digest(base) != model_digest(one_tensor("w", {2, 2}, {1, 2, 3, 4.0000005f})));
  CHECK(model_digest(base) != model_digest(one_tensor("v", {2, 2}, {1, 2, 3, 4})));
  CHECK(model_digest(base) != model_digest(one_tensor("w", {4}, {1, 2, 3, 4})));
  CHECK(model_digest(base) != model_digest(model::ModelParameters{}));
  CHECK(to_hex(model_digest(model::ModelParameters{})).size() == 64);
}

}  // namespace sotto::codec
