// RandomizedRotation: the randomized Hadamard transform of the Distributed Discrete Gaussian mechanism (Kairouz,
// Liu, Steinke, ICML 2021). A vector of dimension d is zero-padded to the next power of two m, multiplied by m
// random signs, and transformed by the Walsh-Hadamard matrix scaled by 1/sqrt(m): an orthogonal map, so L2 norms are
// kept, and it spreads the vector's energy evenly over the coordinates (each about ||x||/sqrt(m)), which is what
// lets rounding and wrapping mod 2^bits lose little. The signs come from a public per-round seed (every client and
// the aggregator use the same rotation); unrotate() is the exact inverse (up to floating-point rounding).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sotto::dp {

using RotationSeed = std::array<std::uint8_t, 32>;

// The smallest power of two >= d (d >= 1).
std::size_t padded_dimension(std::size_t d);

// In place: v <- H v / sqrt(m), m = v.size() a power of two. Its own inverse.
void normalized_walsh_hadamard(std::span<double> v);

class RandomizedRotation {
 public:
  // Throws sotto::Error for dimension 0.
  RandomizedRotation(std::size_t dimension, const RotationSeed& seed);

  std::size_t dimension() const { return dimension_; }
  std::size_t padded() const { return signs_.size(); }

  // x (length dimension()) -> H D pad(x) / sqrt(m), length padded().
  std::vector<double> rotate(std::span<const double> x) const;
  // The inverse: y (length padded()) -> the first dimension() entries of D H y / sqrt(m).
  std::vector<double> unrotate(std::span<const double> y) const;

 private:
  std::size_t dimension_;
  std::vector<std::int8_t> signs_;  // +1 or -1, one per padded coordinate
};

}  // namespace sotto::dp
