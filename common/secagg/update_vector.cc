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

model::ModelParameters masked_input_parameters(std::span<const std::uint32_t> masked, std::uint32_t bits) {
  if (bits >= 32) {
    model::Tensor t{kMaskedInputTensor, model::DType::kInt32, {static_cast<std::int64_t>(masked.size())},
                    std::vector<std::byte>(masked.size_bytes())};
    if (!masked.empty()) std::memcpy(t.data.data(), masked.data(), masked.size_bytes());
    return model::ModelParameters({std::move(t)});
  }
  const std::vector<std::uint8_t> packed = pack_words(masked, bits);
  model::Tensor t{kMaskedInputTensor, model::DType::kUInt8, {static_cast<std::int64_t>(packed.size())},
                  std::vector<std::byte>(packed.size())};
  if (!packed.empty()) std::memcpy(t.data.data(), packed.data(), packed.size());
  return model::ModelParameters({std::move(t)});
}

MaskedInput masked_input_of(model::ModelParameters update, std::uint32_t bits, std::size_t count) {
  const model::Tensor* t = update.find(kMaskedInputTensor);
  const model::DType want = bits >= 32 ? model::DType::kInt32 : model::DType::kUInt8;
  const std::size_t want_elements = bits >= 32 ? count : masked_input_bytes(count, bits);
  if (update.size() != 1 || !t || t->dtype != want || t->num_elements() != want_elements) {
    throw Error(std::string("a secure round's update must be one ") + (bits >= 32 ? "int32" : "uint8") +
                " tensor named " + kMaskedInputTensor + " of " + std::to_string(want_elements) + " elements" +
                (bits >= 32 ? "" : " (" + std::to_string(count) + " words packed at " + std::to_string(bits) + " bits)"));
  }
  // The int32 tensor of a 32-bit input holds its words little-endian, as they are packed at 32 bits.
  MaskedInput input;
  input.packed = std::move(update.mutable_tensors().front().data);
  return input;
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
