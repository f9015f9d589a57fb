#include "common/codec/model_stream.h"

#include <cstring>
#include <unordered_set>

#include "common/util/error.h"

namespace sotto::codec {

v1::DType to_proto(model::DType dtype) {
  return static_cast<v1::DType>(static_cast<int>(dtype));
}

model::DType from_proto(v1::DType dtype) {
  return model::dtype_from_int(static_cast<int>(dtype));
}

v1::ModelManifest make_manifest(const model::ModelParameters& params) {
  v1::ModelManifest manifest;
  for (const auto& t : params.tensors()) {
    auto* spec = manifest.add_tensors();
    spec->set_name(t.name);
    spec->set_dtype(to_proto(t.dtype));
    for (auto d : t.shape) spec->add_shape(d);
  }
  manifest.set_total_bytes(params.total_bytes());
  return manifest;
}

std::optional<std::string> manifest_mismatch(const v1::ModelManifest& manifest, const model::ModelParameters& layout) {
  const auto& expected = layout.tensors();
  if (static_cast<std::size_t>(manifest.tensors_size()) != expected.size()) {
    return "it lists " + std::to_string(manifest.tensors_size()) + " tensors, the model has " +
           std::to_string(expected.size());
  }
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& spec = manifest.tensors(static_cast<int>(i));
    const auto& want = expected[i];
    const std::string at = "tensor " + std::to_string(i) + " ('" + want.name + "')";
    if (spec.name() != want.name) return at + " is named '" + spec.name() + "' in the update";
    if (spec.dtype() != to_proto(want.dtype)) {
      return at + " has dtype " + v1::DType_Name(spec.dtype()) + " in the update, " +
             v1::DType_Name(to_proto(want.dtype)) + " in the model";
    }
    const std::vector<std::int64_t> shape(spec.shape().begin(), spec.shape().end());
    if (shape != want.shape) {
      return at + " has shape " + model::shape_string(shape) + " in the update, " + model::shape_string(want.shape) +
             " in the model";
    }
  }
  return std::nullopt;
}

void for_each_chunk(const model::ModelParameters& params, std::size_t max_chunk_bytes,
                    const std::function<void(v1::TensorChunk&&)>& emit) {
  if (max_chunk_bytes == 0) throw Error("max_chunk_bytes must be positive");
  const auto& tensors = params.tensors();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& data = tensors[i].data;
    for (std::size_t off = 0; off < data.size(); off += max_chunk_bytes) {
      const std::size_t n = std::min(max_chunk_bytes, data.size() - off);
      v1::TensorChunk chunk;
      chunk.set_tensor_index(static_cast<std::uint32_t>(i));
      chunk.set_offset(off);
      chunk.set_data(reinterpret_cast<const char*>(data.data() + off), n);
      emit(std::move(chunk));
    }
  }
}

std::size_t chunk_count(const model::ModelParameters& params, std::size_t max_chunk_bytes) {
  if (max_chunk_bytes == 0) throw Error("max_chunk_bytes must be positive");
  std::size_t n = 0;
  for (const auto& t : params.tensors()) n += (t.data.size() + max_chunk_bytes - 1) / max_chunk_bytes;
  return n;
}

ModelAssembler::ModelAssembler(const v1::ModelManifest& manifest, std::size_t max_total_bytes) {
  if (static_cast<std::size_t>(manifest.tensors_size()) > kMaxManifestTensors) {
    throw Error("model manifest lists " + std::to_string(manifest.tensors_size()) +
                " tensors, more than the limit of " + std::to_string(kMaxManifestTensors));
  }
  std::unordered_set<std::string> names;
  std::size_t total = 0;
  for (const auto& spec : manifest.tensors()) {
    if (spec.name().empty()) throw Error("model manifest has a tensor with an empty name");
    if (!names.insert(spec.name()).second) throw Error("model manifest names tensor '" + spec.name() + "' twice");
    model::Tensor t;
    t.name = spec.name();
    try {
      t.dtype = from_proto(spec.dtype());
    } catch (const Error& e) {
      throw Error("model manifest, tensor '" + spec.name() + "': " + e.what());
    }
    t.shape.assign(spec.shape().begin(), spec.shape().end());
    std::size_t elements = 0;
    try {
      elements = model::element_count(t.shape);
    } catch (const Error& e) {
      throw Error("model manifest, tensor '" + spec.name() + "': " + e.what());
    }
    // Checked so that a hostile shape cannot wrap the byte count (or the running total) around to a small number.
    const std::size_t element_size = model::dtype_size(t.dtype);
    if (elements > max_total_bytes / element_size || elements * element_size > max_total_bytes - total) {
      throw Error("model manifest announces more than the limit of " + std::to_string(max_total_bytes) +
                  " bytes (max_model_bytes)");
    }
    total += elements * element_size;
    tensors_.push_back(std::move(t));
  }
  if (total != manifest.total_bytes()) {
    throw Error("model manifest says total_bytes " + std::to_string(manifest.total_bytes()) +
                " but its shapes add up to " + std::to_string(total));
  }
  // Allocate only after the whole manifest checked out.
  for (auto& t : tensors_) t.data.resize(t.num_elements() * model::dtype_size(t.dtype));
  skip_empty_tensors();
}

void ModelAssembler::skip_empty_tensors() {
  while (current_ < tensors_.size() && offset_ == tensors_[current_].data.size()) {
    ++current_;
    offset_ = 0;
  }
}

std::optional<std::string> ModelAssembler::accept(const v1::TensorChunk& chunk) {
  if (failed_) return "model stream already failed";
  auto fail = [this](std::string message) {
    failed_ = true;
    return std::optional<std::string>(std::move(message));
  };
  if (current_ >= tensors_.size()) return fail("model stream received a chunk after it was complete");
  if (chunk.tensor_index() != current_ || chunk.offset() != offset_) {
    return fail("model stream expected a chunk of tensor " + std::to_string(current_) + " at offset " +
                std::to_string(offset_) + ", got tensor " + std::to_string(chunk.tensor_index()) + " at offset " +
                std::to_string(chunk.offset()));
  }
  auto& t = tensors_[current_];
  if (chunk.data().empty()) return fail("model stream received an empty chunk for tensor '" + t.name + "'");
  if (chunk.data().size() > t.data.size() - offset_) {
    return fail("chunk of " + std::to_string(chunk.data().size()) + " bytes runs past the end of tensor '" + t.name +
                "' (" + std::to_string(t.data.size()) + " bytes)");
  }
  std::memcpy(t.data.data() + offset_, chunk.data().data(), chunk.data().size());
  offset_ += chunk.data().size();
  received_ += chunk.data().size();
  skip_empty_tensors();
  return std::nullopt;
}

bool ModelAssembler::complete() const {
  return !failed_ && current_ >= tensors_.size();
}

model::ModelParameters ModelAssembler::take() {
  if (!complete()) throw Error("model stream is not complete");
  return model::ModelParameters(std::move(tensors_));
}

}  // namespace sotto::codec
