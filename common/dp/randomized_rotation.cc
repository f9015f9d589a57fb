#include "common/dp/randomized_rotation.h"

#include <cmath>
#include <string>

#include "common/crypto/random_stream.h"
#include "common/util/error.h"

namespace sotto::dp {

std::size_t padded_dimension(std::size_t d) {
  std::size_t m = 1;
  while (m < d) m <<= 1;
  return m;
}

void normalized_walsh_hadamard(std::span<double> v) {
  const std::size_t m = v.size();
  for (std::size_t half = 1; half < m; half <<= 1) {
    for (std::size_t block = 0; block < m; block += 2 * half) {
      for (std::size_t i = block; i < block + half; ++i) {
        const double a = v[i], b = v[i + half];
        v[i] = a + b;
        v[i + half] = a - b;
      }
    }
  }
  const double norm = 1.0 / std::sqrt(static_cast<double>(m));
  for (double& x : v) x *= norm;
}

RandomizedRotation::RandomizedRotation(std::size_t dimension, const RotationSeed& seed) : dimension_(dimension) {
  if (dimension == 0) throw Error("randomized rotation: the dimension must be at least 1");
  crypto::RandomStream stream(seed);
  signs_.resize(padded_dimension(dimension));
  for (auto& s : signs_) s = stream.coin() ? 1 : -1;
}

std::vector<double> RandomizedRotation::rotate(std::span<const double> x) const {
  if (x.size() != dimension_) {
    throw Error("randomized rotation: the vector has " + std::to_string(x.size()) + " entries, expected " +
                std::to_string(dimension_));
  }
  std::vector<double> y(signs_.size(), 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = signs_[i] * x[i];
  normalized_walsh_hadamard(y);
  return y;
}

std::vector<double> RandomizedRotation::unrotate(std::span<const double> y) const {
  if (y.size() != signs_.size()) {
    throw Error("randomized rotation: the rotated vector has " + std::to_string(y.size()) + " entries, expected " +
                std::to_string(signs_.size()));
  }
  std::vector<double> x(y.begin(), y.end());
  normalized_walsh_hadamard(x);
  x.resize(dimension_);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] *= signs_[i];
  return x;
}

}  // namespace sotto::dp
