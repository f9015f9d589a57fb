// L2 clipping of an update: its norm over the floating-point tensors (integer tensors, such as step counters, are
// neither measured nor scaled) and the scaling that brings it down to a bound. The participant clips what it sends,
// and in plain rounds the coordinator clips again what arrives, so that a client that skips the step gains nothing.
#pragma once

#include <span>
#include <string>

#include "common/model/parameters.h"

namespace sotto::model {

// sqrt of the sum of squares of every floating-point element, accumulated in double.
double l2_norm(const ModelParameters& params);

// Scales the floating-point tensors by max_norm / norm when the norm exceeds max_norm (by more than rounding: an
// update clipped once is left alone the second time). Returns the norm before clipping. max_norm must be positive.
double clip_to_norm(ModelParameters& params, double max_norm);

// Multiplies every floating-point element by `factor` (integer tensors are left alone).
void scale_floating(ModelParameters& params, double factor);

// Whether an update of this norm is clipped by max_norm (the tolerance clip_to_norm allows for rounding).
bool exceeds_norm(double norm, double max_norm);

// A flattened update's L2 norm and the factor that brings it within max_norm (1 when it is not above it), for the
// secure encodings that clip as they quantize. Throws sotto::Error, prefixed with `who`, for a NaN or Inf element.
struct FlatClip {
  double norm = 0;
  double factor = 1;
};
FlatClip flat_clip(std::span<const float> flat, double max_norm, const std::string& who);

}  // namespace sotto::model
