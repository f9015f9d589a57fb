#include "common/secagg/update_vector.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/util/error.h"

namespace sotto::secagg {

std::size_t floating_length(const model::ModelParameters& params) {
  std::size_t n = 0;
  for (const auto& t : params.tensors()) {
    if (t.dtype == model::DType::kFloat32 || t.dtype == model::DType::kFloat64) n += t.num_elements();
  }
  return n;
}

model::ModelParameters masked_input_parameters(std::span<const std::uint32_t> masked) {
  model::Tensor t{kMaskedInputTensor, model::DType::kInt32, {static_cast<std::int64_t>(masked.size())},
                  std::vector<std::byte>(masked.size_bytes())};
  if (!masked.empty()) std::memcpy(t.data.data(), masked.data(), masked.size_bytes());
  return model::ModelParameters({std::move(t)});
}

std::vector<float> flatten_floating(const model::ModelParameters& params) {
  std::vector<float> out;
  out.reserve(floating_length(params));
  for (const auto& t : params.tensors()) {
    if (t.dtype == model::DType::kFloat32) {
      auto v = t.as<float>();
      out.insert(out.end(), v.begin(), v.end());
    } else if (t.dtype == model::DType::kFloat64) {
      for (double x : t.as<double>()) out.push_back(static_cast<float>(x));
    }
  }
  return out;
}

model::ModelParameters unflatten_floating(std::span<const double> values, const model::ModelParameters& layout) {
  if (values.size() != floating_length(layout)) {
    throw Error("secure aggregation: a vector of " + std::to_string(values.size()) + " values for a model with " +
                std::to_string(floating_length(layout)) + " floating-point parameters");
  }
  model::ModelParameters out = layout;
  std::size_t at = 0;
  for (auto& t : out.mutable_tensors()) {
    if (t.dtype == model::DType::kFloat32) {
      auto v = t.as_mutable<float>();
      for (auto& x : v) x = static_cast<float>(values[at++]);
    } else if (t.dtype == model::DType::kFloat64) {
      auto v = t.as_mutable<double>();
      for (auto& x : v) x = values[at++];
    } else {
      std::fill(t.data.begin(), t.data.end(), std::byte{0});
    }
  }
  return out;
}

}  // namespace sotto::secagg
