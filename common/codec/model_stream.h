// Model streams: how ModelParameters travel as a manifest followed by bounded TensorChunk messages.
//
// The sender builds a ModelManifest (names, dtypes, shapes, total bytes) and cuts the tensors' bytes into chunks
// of at most max_chunk_bytes, in tensor order. The receiver's ModelAssembler validates the manifest (known dtypes,
// non-negative shapes, unique names, a total within its limit) before allocating, then accepts only the chunk it
// expects next, so a model of any size arrives in small frames and a misbehaving peer cannot make it allocate
// more than it agreed to.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/model/parameters.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::codec {

inline constexpr std::size_t kDefaultChunkBytes = 1u << 20;
// Most tensors a manifest may list: far above any real model's count, and a bound on what a peer can make the
// receiver hold for a manifest of tiny or empty tensors.
inline constexpr std::size_t kMaxManifestTensors = 1u << 16;

v1::DType to_proto(model::DType dtype);
// Throws sotto::Error for DTYPE_UNSPECIFIED or an unknown value.
model::DType from_proto(v1::DType dtype);

v1::ModelManifest make_manifest(const model::ModelParameters& params);

// Whether a manifest lists exactly `layout`'s tensors (names, dtypes and shapes, in order); if not, the first
// difference, naming the tensor and both shapes or dtypes.
std::optional<std::string> manifest_mismatch(const v1::ModelManifest& manifest, const model::ModelParameters& layout);

// Calls `emit` once per chunk, in order; every chunk holds 1..max_chunk_bytes bytes of one tensor.
void for_each_chunk(const model::ModelParameters& params, std::size_t max_chunk_bytes,
                    const std::function<void(v1::TensorChunk&&)>& emit);

// Number of chunks for_each_chunk will emit.
std::size_t chunk_count(const model::ModelParameters& params, std::size_t max_chunk_bytes);

class ModelAssembler {
 public:
  // Validates the manifest; throws sotto::Error naming the problem (bad dtype, negative dimension, duplicate name,
  // total_bytes that does not match the shapes, or more than max_total_bytes).
  ModelAssembler(const v1::ModelManifest& manifest, std::size_t max_total_bytes);

  // Takes the next chunk. Returns an error message (and the assembler is then unusable) when the chunk is not the
  // one expected: wrong tensor, wrong offset, empty, or running past the tensor's end.
  std::optional<std::string> accept(const v1::TensorChunk& chunk);
  bool complete() const;
  std::size_t received_bytes() const { return received_; }
  // The assembled parameters; only when complete().
  model::ModelParameters take();

 private:
  void skip_empty_tensors();

  std::vector<model::Tensor> tensors_;
  std::size_t current_ = 0;
  std::size_t offset_ = 0;
  std::size_t received_ = 0;
  bool failed_ = false;
};

}  // namespace sotto::codec
