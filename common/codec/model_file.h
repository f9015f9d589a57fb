// Model files: ModelParameters on disk, for the aggregator's checkpoints and a client's saved models.
//
// A file is the magic "SOTTOMF1", then length-prefixed frames exactly as on the wire: one CheckpointHeader
// (round counters and the manifests), then the model's TensorChunk messages, then the strategy state's. write_model_file is atomic:
// it writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs the directory,
// so a crash leaves either the old file or the new one, never a torn one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/model/parameters.h"

namespace sotto::codec {

struct ModelFile {
  std::uint64_t next_round_id = 1;
  std::uint64_t completed_rounds = 0;
  model::ModelParameters model;
  std::string strategy;                   // who wrote strategy_state; empty when there is none
  model::ModelParameters strategy_state;  // carried across restarts, e.g. a server optimizer's moments
};

void write_model_file(const std::filesystem::path& path, const ModelFile& file);
// Throws sotto::Error naming the file and what is wrong with it (missing, not a Sotto model file, truncated).
ModelFile read_model_file(const std::filesystem::path& path);

}  // namespace sotto::codec
