#include "common/codec/model_frames.h"

#include "common/codec/model_stream.h"
#include "common/net/frame.h"

namespace sotto::codec {

std::vector<SharedFrame> encode_chunk_frames(const model::ModelParameters& params, std::size_t chunk_bytes) {
  std::vector<SharedFrame> frames;
  frames.reserve(chunk_count(params, chunk_bytes));
  for_each_chunk(params, chunk_bytes, [&](v1::TensorChunk&& chunk) {
    v1::Envelope env;
    *env.mutable_chunk() = std::move(chunk);
    frames.push_back(std::make_shared<const std::string>(net::encode_frame(std::move(env))));
  });
  return frames;
}

}  // namespace sotto::codec
