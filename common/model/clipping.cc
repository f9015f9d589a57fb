#include "common/model/clipping.h"

#include <cmath>

#include "common/util/error.h"

namespace sotto::model {

double l2_norm(const ModelParameters& params) {
  double sum = 0;
  for (const auto& t : params.tensors()) {
    if (t.dtype == DType::kFloat32) {
      for (float v : t.as<float>()) sum += static_cast<double>(v) * v;
    } else if (t.dtype == DType::kFloat64) {
      for (double v : t.as<double>()) sum += v * v;
    }
  }
  return std::sqrt(sum);
}

bool exceeds_norm(double norm, double max_norm) {
  return norm > max_norm * (1 + 1e-6);
}

void scale_floating(ModelParameters& params, double factor) {
  for (auto& t : params.mutable_tensors()) {
    if (t.dtype == DType::kFloat32) {
      for (float& v : t.as_mutable<float>()) v = static_cast<float>(v * factor);
    } else if (t.dtype == DType::kFloat64) {
      for (double& v : t.as_mutable<double>()) v *= factor;
    }
  }
}

FlatClip flat_clip(std::span<const float> flat, double max_norm, const std::string& who) {
  double squared = 0;
  for (float v : flat) {
    if (!std::isfinite(v)) throw Error(who + ": the update holds NaN or Inf");
    squared += static_cast<double>(v) * v;
  }
  const double norm = std::sqrt(squared);
  return {norm, norm > max_norm ? max_norm / norm : 1.0};
}

double clip_to_norm(ModelParameters& params, double max_norm) {
  const double norm = l2_norm(params);
  if (exceeds_norm(norm, max_norm)) scale_floating(params, max_norm / norm);
  return norm;
}

}  // namespace sotto::model
