// Update vectors: how a model update becomes the flat vector that secure aggregation sums, and back.
//
// Only floating-point tensors take part, flattened in model order (float32 and float64, each element converted to
// float). Integer tensors (BatchNorm's num_batches_tracked) are counters, not learning signal, and would dominate
// the clipped norm: under secure aggregation they keep the global model's value (their delta is zero).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/model/parameters.h"
#include "common/secagg/messages.h"
#include "common/secagg/packed_words.h"

namespace sotto::secagg {

// Number of floating-point elements: the length of the vector flatten_floating returns.
std::size_t floating_length(const model::ModelParameters& params);
std::vector<float> flatten_floating(const model::ModelParameters& params);
// A delta laid out like `layout`: floating tensors from `values` (floating_length(layout) of them), integer
// tensors zero. Throws sotto::Error on a length mismatch.
model::ModelParameters unflatten_floating(std::span<const double> values, const model::ModelParameters& layout);

// The name of the one tensor a secure round's update carries: the client's masked input.
inline constexpr const char* kMaskedInputTensor = "secagg.masked_input";

// A masked input as the update a client uploads: one int32 tensor of its words when bits = 32, else one uint8
// tensor of the packed words.
model::ModelParameters masked_input_parameters(std::span<const std::uint32_t> masked, std::uint32_t bits = 32);
// An uploaded masked input as the server sums it: its packed bytes, moved out of the update (not unpacked). Throws
// sotto::Error saying what is wrong (another tensor, dtype or size).
MaskedInput masked_input_of(model::ModelParameters update, std::uint32_t bits, std::size_t count);

}  // namespace sotto::secagg
