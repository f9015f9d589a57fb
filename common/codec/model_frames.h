// Model frames: a model's TensorChunk messages encoded once as ready-to-send frames, shared by every connection
// that must receive them (the aggregator sends the same global model to the whole cohort).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/model/parameters.h"

namespace sotto::codec {

using SharedFrame = std::shared_ptr<const std::string>;

std::vector<SharedFrame> encode_chunk_frames(const model::ModelParameters& params, std::size_t chunk_bytes);

}  // namespace sotto::codec
