#include "aggregator/weighted_mean.h"

#include <cmath>
#include <span>
#include <type_traits>

#include "common/util/error.h"

namespace sotto::aggregator {

namespace {

template <typename T>
void add_weighted(std::span<const T> values, double weight, std::vector<double>& sums) {
  for (std::size_t i = 0; i < values.size(); ++i) sums[i] += weight * static_cast<double>(values[i]);
}

template <typename T>
void apply_mean_typed(std::span<T> out, std::span<const T> global, const std::vector<double>& sums, double total) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double mean = sums[i] / total;
    if constexpr (std::is_floating_point_v<T>) {
      out[i] = static_cast<T>(static_cast<double>(global[i]) + mean);
    } else {
      out[i] = static_cast<T>(global[i] + static_cast<T>(std::llround(mean)));
    }
  }
}

template <typename Fn>
void dispatch(model::DType dtype, const std::string& owner, const std::string& name, Fn&& fn) {
  switch (dtype) {
    case model::DType::kFloat32: fn(float{}); break;
    case model::DType::kFloat64: fn(double{}); break;
    case model::DType::kInt64: fn(std::int64_t{}); break;
    case model::DType::kInt32: fn(std::int32_t{}); break;
    case model::DType::kUInt8: fn(std::uint8_t{}); break;
    case model::DType::kInt8: fn(std::int8_t{}); break;
    default:
      throw Error(owner + " cannot average tensor '" + name + "' of dtype " + std::string(model::dtype_name(dtype)));
  }
}

}  // namespace

void WeightedMeanDelta::reset(const model::ModelParameters& like) {
  sums_.assign(like.size(), {});
  for (std::size_t t = 0; t < like.size(); ++t) sums_[t].assign(like.tensors()[t].num_elements(), 0.0);
  total_weight_ = 0;
}

void WeightedMeanDelta::add(const model::ModelParameters& delta, std::uint64_t num_examples) {
  if (delta.size() != sums_.size()) {
    throw Error(owner_ + ": update has " + std::to_string(delta.size()) + " tensors but the model has " +
                std::to_string(sums_.size()));
  }
  for (std::size_t t = 0; t < delta.size(); ++t) {
    if (delta.tensors()[t].num_elements() != sums_[t].size()) {
      throw Error(owner_ + ": update tensor '" + delta.tensors()[t].name + "' has " +
                  std::to_string(delta.tensors()[t].num_elements()) + " elements but the model's has " +
                  std::to_string(sums_[t].size()));
    }
  }
  const double weight = static_cast<double>(num_examples);
  for (std::size_t t = 0; t < delta.size(); ++t) {
    const auto& tensor = delta.tensors()[t];
    dispatch(tensor.dtype, owner_, tensor.name, [&](auto tag) {
      using T = decltype(tag);
      add_weighted<T>(tensor.as<T>(), weight, sums_[t]);
    });
  }
  total_weight_ += weight;
}

void WeightedMeanDelta::require_updates() const {
  if (!(total_weight_ > 0)) throw Error(owner_ + ": no updates with a positive example count to average");
}

void WeightedMeanDelta::apply_mean(std::size_t tensor, const model::Tensor& global, model::Tensor& out) const {
  if (tensor >= sums_.size() || global.num_elements() != sums_[tensor].size() ||
      out.num_elements() != global.num_elements() || out.dtype != global.dtype) {
    throw Error(owner_ + ": tensor '" + global.name + "' does not match the layout the round began with");
  }
  dispatch(out.dtype, owner_, out.name, [&](auto tag) {
    using T = decltype(tag);
    apply_mean_typed<T>(out.as_mutable<T>(), global.as<T>(), sums_[tensor], total_weight_);
  });
}

void WeightedMeanDelta::check_layout(const model::ModelParameters& global) const {
  if (global.size() != sums_.size()) {
    throw Error(owner_ + ": the model has " + std::to_string(global.size()) + " tensors but the round began with " +
                std::to_string(sums_.size()));
  }
  for (std::size_t t = 0; t < global.size(); ++t) {
    if (global.tensors()[t].num_elements() != sums_[t].size()) {
      throw Error(owner_ + ": tensor '" + global.tensors()[t].name + "' has " +
                  std::to_string(global.tensors()[t].num_elements()) + " elements but the round began with " +
                  std::to_string(sums_[t].size()));
    }
  }
}

model::ModelParameters WeightedMeanDelta::apply_to(const model::ModelParameters& global) const {
  require_updates();
  check_layout(global);
  model::ModelParameters next = global;
  for (std::size_t t = 0; t < next.size(); ++t) apply_mean(t, global.tensors()[t], next.mutable_tensors()[t]);
  return next;
}

}  // namespace sotto::aggregator
