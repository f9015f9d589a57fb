// ModelDigest: SHA-256 of a model's canonical form — for each tensor in order, its name, dtype, shape and bytes,
// each length-prefixed — so that two models have the same digest exactly when they are equal. The aggregator puts
// the global model's digest in the task; the participant checks the model it reassembled against it before
// training on it.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/model/parameters.h"

namespace sotto::codec {

using ModelDigest = std::array<std::uint8_t, 32>;

ModelDigest model_digest(const model::ModelParameters& model);
std::string to_hex(const ModelDigest& digest);

}  // namespace sotto::codec
