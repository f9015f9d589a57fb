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

std::size_t masked_input_bytes(std::size_t count, std::uint32_t bits) { return (count * bits + 7) / 8; }

std::vector<std::uint8_t> pack_words(std::span<const std::uint32_t> words, std::uint32_t bits) {
  std::vector<std::uint8_t> out(masked_input_bytes(words.size(), bits), 0);
  std::size_t bit = 0;
  for (std::uint32_t w : words) {
    for (std::uint32_t b = 0; b < bits; ++b, ++bit) {
      if ((w >> b) & 1u) out[bit / 8] |= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
  return out;
}

std::vector<std::uint32_t> unpack_words(std::span<const std::uint8_t> bytes, std::uint32_t bits, std::size_t count) {
  if (bytes.size() != masked_input_bytes(count, bits)) {
    throw Error("packed words: " + std::to_string(bytes.size()) + " bytes, expected " +
                std::to_string(masked_input_bytes(count, bits)) + " for " + std::to_string(count) + " words of " +
                std::to_string(bits) + " bits");
  }
  std::vector<std::uint32_t> out(count, 0);
  std::size_t bit = 0;
  for (auto& w : out) {
    for (std::uint32_t b = 0; b < bits; ++b, ++bit) {
      if ((bytes[bit / 8] >> (bit % 8)) & 1u) w |= std::uint32_t{1} << b;
    }
  }
  return out;
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

std::vector<std::uint32_t> masked_input_words(const model::ModelParameters& update, std::uint32_t bits,
                                              std::size_t count) {
  const model::Tensor* t = update.find(kMaskedInputTensor);
  const model::DType want = bits >= 32 ? model::DType::kInt32 : model::DType::kUInt8;
  const std::size_t want_elements = bits >= 32 ? count : masked_input_bytes(count, bits);
  if (update.size() != 1 || !t || t->dtype != want || t->num_elements() != want_elements) {
    throw Error(std::string("a secure round's update must be one ") + (bits >= 32 ? "int32" : "uint8") +
                " tensor named " + kMaskedInputTensor + " of " + std::to_string(want_elements) + " elements" +
                (bits >= 32 ? "" : " (" + std::to_string(count) + " words packed at " + std::to_string(bits) + " bits)"));
  }
  if (bits >= 32) {
    auto words = t->as<std::int32_t>();
    return std::vector<std::uint32_t>(words.begin(), words.end());
  }
  auto bytes = t->as<std::uint8_t>();
  return unpack_words(std::span<const std::uint8_t>(bytes.data(), bytes.size()), bits, count);
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
