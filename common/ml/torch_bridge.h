// Torch bridge: converts between a LibTorch module's state — named_parameters() then named_buffers(), in
// registration order — and ModelParameters. The *_state functions take that state as a list of live tensors, so
// the same code serves torch::nn::Module and TorchScript's torch::jit::Module.
//
// The round trip is exact (bytes copied, never re-computed). import_module checks that every tensor the module has
// is present with the same dtype and shape, and that no extra tensors are given, and names the offender. This is
// the one public header that includes LibTorch; apps that bring their own module use it with client::Trainer.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include "common/model/parameters.h"

namespace sotto::ml {

// A module's state in exchange order; the tensors share the module's storage.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

NamedTensors named_state(const torch::nn::Module& module);

model::ModelParameters export_module(const torch::nn::Module& module);
void import_module(torch::nn::Module& module, const model::ModelParameters& params);
// The module's state minus `base`, tensor by tensor in exchange order: bit for bit
// model::subtract(export_module(module), base), without the intermediate copy (float32 tensors are subtracted
// straight from the module's memory). Throws sotto::Error naming the first tensor whose name, dtype or shape
// differs from base's.
model::ModelParameters export_delta(const torch::nn::Module& module, const model::ModelParameters& base);

// The same on a module's state (named_state, or a TorchScript module's): import_state writes into the tensors.
model::ModelParameters export_state(const NamedTensors& state);
void import_state(const NamedTensors& state, const model::ModelParameters& params);
model::ModelParameters export_state_delta(const NamedTensors& state, const model::ModelParameters& base);

}  // namespace sotto::ml
