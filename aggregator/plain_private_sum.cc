#include "aggregator/plain_private_sum.h"

#include <stdexcept>

#include "common/dp/ddg_encoding.h"
#include "common/secagg/update_vector.h"

namespace sotto::aggregator {

PlainPrivateSum::PlainPrivateSum(round::DistributedNoise noise) : noise_(std::move(noise)) {
  if (noise_.source == round::NoiseSource::kShares || noise_.integer_sum) {
    throw std::logic_error("PlainPrivateSum takes central or local noise");
  }
  counted_ = noise_.clipped_count_weight > 0;
  if (counted_ && noise_.source != round::NoiseSource::kAggregator) {
    throw std::logic_error("PlainPrivateSum: adaptive clipping's count needs central noise");
  }
  if (noise_.source == round::NoiseSource::kAggregator) {
    grid_sum_.assign(noise_.ddg.padded, 0);
  } else {
    float_sum_.assign(noise_.ddg.dimension, 0.0);
  }
}

void PlainPrivateSum::add(const model::ModelParameters& delta, float clipped_count_entry) {
  std::vector<float> flat = secagg::flatten_floating(delta);
  if (counted_) flat.push_back(clipped_count_entry);
  if (noise_.source == round::NoiseSource::kAggregator) {
    const auto rounded = dp::ddg_round(flat, noise_.ddg, noise_.rotation_seed, random_);
    for (std::size_t i = 0; i < rounded.size(); ++i) grid_sum_[i] += rounded[i];
  } else {
    if (flat.size() != float_sum_.size()) throw std::logic_error("PlainPrivateSum: an update of another length");
    for (std::size_t i = 0; i < flat.size(); ++i) float_sum_[i] += static_cast<double>(flat[i]);
  }
  ++count_;
}

model::ModelParameters PlainPrivateSum::mean(double denominator, const model::ModelParameters& like) {
  std::vector<double> sum = float_sum_;
  if (noise_.source == round::NoiseSource::kAggregator) {
    std::vector<std::int64_t> noised = grid_sum_;
    dp::add_discrete_gaussian(noised, noise_.ddg.local_stddev, random_);
    sum = dp::ddg_decode_integers(noised, noise_.ddg, noise_.rotation_seed);
  }
  if (counted_) {
    clipped_count_sum_ = sum.back();
    sum.pop_back();
  }
  for (double& v : sum) v /= denominator;
  return secagg::unflatten_floating(sum, like);
}

}  // namespace sotto::aggregator
