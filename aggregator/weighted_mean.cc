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

// out = global + sum / total; `sum_at(i)` is element i's weighted sum.
template <typename T, typename SumAt>
void apply_mean_typed(std::span<T> out, std::span<const T> global, SumAt&& sum_at, double total) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double mean = sum_at(i) / total;
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
  elements_.clear();
  dtypes_.clear();
  for (const auto& tensor : like.tensors()) {
    elements_.push_back(tensor.num_elements());
    dtypes_.push_back(tensor.dtype);
  }
  release();
}

void WeightedMeanDelta::check_update_layout(const model::ModelParameters& delta) const {
  if (delta.size() != elements_.size()) {
    throw Error(owner_ + ": update has " + std::to_string(delta.size()) + " tensors but the model has " +
                std::to_string(elements_.size()));
  }
  for (std::size_t t = 0; t < delta.size(); ++t) {
    if (delta.tensors()[t].num_elements() != elements_[t]) {
      throw Error(owner_ + ": update tensor '" + delta.tensors()[t].name + "' has " +
                  std::to_string(delta.tensors()[t].num_elements()) + " elements but the model's has " +
                  std::to_string(elements_[t]));
    }
  }
}

bool WeightedMeanDelta::same_dtypes(const model::ModelParameters& delta) const {
  for (std::size_t t = 0; t < delta.size(); ++t) {
    if (delta.tensors()[t].dtype != dtypes_[t]) return false;
  }
  return true;
}

void WeightedMeanDelta::add(model::ModelParameters delta, std::uint64_t num_examples) {
  check_update_layout(delta);
  const double weight = static_cast<double>(num_examples);
  materialize();
  add_to_sums(delta, weight);
  total_weight_ += weight;
}

void WeightedMeanDelta::add_sole(model::ModelParameters delta, std::uint64_t num_examples) {
  check_update_layout(delta);
  if (!sums_.empty() || first_ || total_weight_ != 0 || !same_dtypes(delta)) {
    add(std::move(delta), num_examples);
    return;
  }
  first_ = std::move(delta);
  total_weight_ = static_cast<double>(num_examples);
}

void WeightedMeanDelta::materialize() {
  if (!sums_.empty() || elements_.empty()) return;  // made already, or nothing to make
  sums_.resize(elements_.size());
  for (std::size_t t = 0; t < elements_.size(); ++t) sums_[t].assign(elements_[t], 0.0);
  if (first_) add_to_sums(*first_, total_weight_);  // its weight is the whole so far
  first_.reset();
}

void WeightedMeanDelta::add_to_sums(const model::ModelParameters& delta, double weight) {
  for (std::size_t t = 0; t < delta.size(); ++t) {
    const auto& tensor = delta.tensors()[t];
    dispatch(tensor.dtype, owner_, tensor.name, [&](auto tag) {
      using T = decltype(tag);
      add_weighted<T>(tensor.as<T>(), weight, sums_[t]);
    });
  }
}

void WeightedMeanDelta::require_updates() const {
  if (!(total_weight_ > 0)) throw Error(owner_ + ": no updates with a positive example count to average");
}

void WeightedMeanDelta::apply_mean(std::size_t tensor, const model::Tensor& global, model::Tensor& out) const {
  if (tensor >= elements_.size() || global.num_elements() != elements_[tensor] ||
      out.num_elements() != global.num_elements() || out.dtype != global.dtype) {
    throw Error(owner_ + ": tensor '" + global.name + "' does not match the layout the round began with");
  }
  dispatch(out.dtype, owner_, out.name, [&](auto tag) {
    using T = decltype(tag);
    if (first_) {  // the sum is the one update times its weight, as add_weighted would have made it
      const std::span<const T> x = first_->tensors()[tensor].as<T>();
      const double weight = total_weight_;
      apply_mean_typed<T>(out.as_mutable<T>(), global.as<T>(),
                          [&](std::size_t i) { return 0.0 + weight * static_cast<double>(x[i]); }, total_weight_);
    } else {
      const std::vector<double>& sums = sums_[tensor];
      apply_mean_typed<T>(out.as_mutable<T>(), global.as<T>(), [&](std::size_t i) { return sums[i]; },
                          total_weight_);
    }
  });
}

void WeightedMeanDelta::check_layout(const model::ModelParameters& global) const {
  if (global.size() != elements_.size()) {
    throw Error(owner_ + ": the model has " + std::to_string(global.size()) + " tensors but the round began with " +
                std::to_string(elements_.size()));
  }
  for (std::size_t t = 0; t < global.size(); ++t) {
    if (global.tensors()[t].num_elements() != elements_[t]) {
      throw Error(owner_ + ": tensor '" + global.tensors()[t].name + "' has " +
                  std::to_string(global.tensors()[t].num_elements()) + " elements but the round began with " +
                  std::to_string(elements_[t]));
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

void WeightedMeanDelta::release() {
  std::vector<std::vector<double>>().swap(sums_);
  first_.reset();
  total_weight_ = 0;
}

}  // namespace sotto::aggregator
