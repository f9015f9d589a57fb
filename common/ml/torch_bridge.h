// Torch bridge: converts between a torch::nn::Module's named_parameters() + named_buffers() and ModelParameters.
//
// The round trip is exact (bytes copied, never re-computed). import_module checks that every tensor the module has
// is present with the same dtype and shape, and that no extra tensors are given, and names the offender. This is
// the one public header that includes LibTorch; apps that bring their own module use it with client::Trainer.
#pragma once

#include <torch/nn/module.h>

#include "common/model/parameters.h"

namespace sotto::ml {

model::ModelParameters export_module(const torch::nn::Module& module);
void import_module(torch::nn::Module& module, const model::ModelParameters& params);
// The module's state minus `base`, tensor by tensor in exchange order: bit for bit
// model::subtract(export_module(module), base), without the intermediate copy (float32 tensors are subtracted
// straight from the module's memory). Throws sotto::Error naming the first tensor whose name, dtype or shape
// differs from base's.
model::ModelParameters export_delta(const torch::nn::Module& module, const model::ModelParameters& base);

}  // namespace sotto::ml
