#include "aggregator/fedavg.h"

#include <cmath>

#include "common/util/error.h"

namespace sotto::aggregator {

namespace {

template <typename T>
void add_weighted(std::span<const T> values, double weight, std::vector<double>& sums) {
  for (std::size_t i = 0; i < values.size(); ++i) sums[i] += weight * static_cast<double>(values[i]);
}

template <typename T>
void apply_mean(std::span<T> out, std::span<const T> global, const std::vector<double>& sums, double total) {
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
void dispatch(model::DType dtype, const std::string& name, Fn&& fn) {
  switch (dtype) {
    case model::DType::kFloat32: fn(float{}); break;
    case model::DType::kFloat64: fn(double{}); break;
    case model::DType::kInt64: fn(std::int64_t{}); break;
    case model::DType::kInt32: fn(std::int32_t{}); break;
    case model::DType::kUInt8: fn(std::uint8_t{}); break;
    case model::DType::kInt8: fn(std::int8_t{}); break;
    default:
      throw Error("FedAvg cannot average tensor '" + name + "' of dtype " + std::string(model::dtype_name(dtype)));
  }
}

}  // namespace

void FedAvg::begin_round(const model::ModelParameters& global) {
  sums_.assign(global.size(), {});
  for (std::size_t t = 0; t < global.size(); ++t) sums_[t].assign(global.tensors()[t].num_elements(), 0.0);
  total_weight_ = 0;
}

void FedAvg::accumulate(const model::ModelParameters& delta, std::uint64_t num_examples) {
  if (delta.size() != sums_.size()) throw Error("FedAvg: update has a different number of tensors than the model");
  const double weight = static_cast<double>(num_examples);
  for (std::size_t t = 0; t < delta.size(); ++t) {
    const auto& tensor = delta.tensors()[t];
    dispatch(tensor.dtype, tensor.name, [&](auto tag) {
      using T = decltype(tag);
      add_weighted<T>(tensor.as<T>(), weight, sums_[t]);
    });
  }
  total_weight_ += weight;
}

model::ModelParameters FedAvg::finish_round(const model::ModelParameters& global) {
  if (total_weight_ <= 0) throw Error("FedAvg: no updates with a positive example count to average");
  model::ModelParameters next = global;
  for (std::size_t t = 0; t < next.size(); ++t) {
    auto& out = next.mutable_tensors()[t];
    const auto& in = global.tensors()[t];
    dispatch(out.dtype, out.name, [&](auto tag) {
      using T = decltype(tag);
      apply_mean<T>(out.as_mutable<T>(), in.as<T>(), sums_[t], total_weight_);
    });
  }
  return next;
}

}  // namespace sotto::aggregator
