// The built-in model architectures, by name, in a header without LibTorch, so that configs can check a name
// before (or without) loading it: "fashion_cnn" (the small CNN for 28x28 greyscale, 10 classes, ~80K parameters),
// "fashion_linear" (logistic regression on the pixels) and "fashion_wide_mlp" (a 30.3M-parameter MLP, the big
// model of the end-to-end benchmarks). ml::make_image_model builds them.
#pragma once

#include <string>
#include <vector>

namespace sotto::ml {

inline const std::vector<std::string>& known_architectures() {
  static const std::vector<std::string> names{"fashion_cnn", "fashion_linear", "fashion_wide_mlp"};
  return names;
}

}  // namespace sotto::ml
