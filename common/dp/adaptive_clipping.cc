#include "common/dp/adaptive_clipping.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/util/error.h"
#include "common/util/short_number.h"

namespace sotto::dp {

double count_stddev_for(const AdaptiveClipping& options, std::uint32_t clients) {
  return options.count_stddev > 0 ? options.count_stddev : std::max<std::uint32_t>(clients, 1) / 20.0;
}

double clipped_count_weight(double clip_norm, double noise_multiplier, double count_stddev) {
  if (!(clip_norm > 0) || !(noise_multiplier > 0)) {
    throw Error("adaptive clipping: the clip norm and the noise multiplier must be positive");
  }
  const double spare = count_stddev * count_stddev - noise_multiplier * noise_multiplier / 4;
  if (!(spare > 0)) {
    throw Error("adaptive clipping: the clipped-count noise (privacy.clipped_count_stddev = " +
                util::short_number(count_stddev) + ") must exceed half the noise multiplier (" +
                util::short_number(noise_multiplier) + "), since the bit is part of the noised vector: raise it");
  }
  return noise_multiplier * clip_norm / std::sqrt(spare);
}

double joint_clip_norm(double clip_norm, double count_weight) {
  return std::sqrt(clip_norm * clip_norm + count_weight * count_weight / 4);
}

float clipped_count_entry(double update_norm, double clip_norm, double count_weight) {
  const double half = count_weight / 2;
  return static_cast<float>(update_norm <= clip_norm ? half : -half);
}

std::vector<float> with_clipped_count(std::vector<float> update, double update_norm, double clip_norm,
                                      double count_weight) {
  if (update_norm > clip_norm) {
    const auto shrink = static_cast<float>(clip_norm / update_norm);
    for (float& v : update) v *= shrink;
  }
  update.push_back(clipped_count_entry(update_norm, clip_norm, count_weight));
  return update;
}

double unclipped_fraction(double count_coordinate_sum, double count_weight, std::uint32_t survivors) {
  if (survivors == 0 || !(count_weight > 0)) return 0;
  const double bits = count_coordinate_sum / count_weight + survivors / 2.0;
  return std::clamp(bits / survivors, 0.0, 1.0);
}

double next_clip_norm(double clip_norm, double unclipped_fraction, const AdaptiveClipping& options, double ceiling) {
  const double next = clip_norm * std::exp(-options.learning_rate * (unclipped_fraction - options.target_quantile));
  return ceiling > 0 ? std::min(next, ceiling) : next;
}

}  // namespace sotto::dp
