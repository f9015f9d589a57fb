// Model files: ModelParameters on disk, for the aggregator's checkpoints and a client's saved models.
//
// A file is the magic "SOTTOMF" followed by its format version as one digit, then records that carry the wire's
// messages: one CheckpointHeader (round counters and the manifests), then the model's TensorChunk messages, then
// the strategy state's. Each record is a 4-byte length, (from format 2 on) a CRC-32 of its bytes, and the message.
// Readers take every format up to kModelFileFormat and refuse a newer one by name; new state goes into new
// CheckpointHeader fields or records under a new version, so older files keep loading. A flipped bit fails its
// record's checksum, naming the record. write_model_file is atomic: it writes a temporary file beside the target,
// fsyncs it, renames it over the target and fsyncs the directory, so a crash leaves either the old file or the
// new one, never a torn one. It streams: the file's bytes pass through a buffer of a few MiB on their way to disk,
// and ModelFileRef lets a caller write tensors it holds without copying them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/model/parameters.h"

namespace sotto::codec {

// The format write_model_file writes (1: no checksums; 2: a CRC-32 per record).
inline constexpr std::uint32_t kModelFileFormat = 2;

struct ModelFileRef;

struct ModelFile {
  std::uint64_t next_round_id = 1;
  std::uint64_t completed_rounds = 0;
  model::ModelParameters model;
  std::string strategy;                   // who wrote strategy_state; empty when there is none
  model::ModelParameters strategy_state;  // carried across restarts, e.g. a server optimizer's moments
  std::string round_record;  // JSON: the record of the round the checkpoint closed, for rounds.jsonl; may be empty
  std::map<std::string, std::uint32_t> offences;  // the aggregator's convictions per client id
  std::vector<double> privacy_rdp;                // the privacy spent so far (RDP at dp::default_orders())
  double clip_norm = 0;                           // adaptive clipping's next clip norm; 0: the configured one
  std::uint32_t format_version = kModelFileFormat;  // as read; writes always use kModelFileFormat

  ModelFileRef ref() const;
};

// A model file's contents by reference, for writing tensors held elsewhere (a checkpoint of a 100 MB model must
// not cost another 100 MB). The fields mean what ModelFile's do; `model` is required, the other pointers may be
// null for none.
struct ModelFileRef {
  std::uint64_t next_round_id = 1;
  std::uint64_t completed_rounds = 0;
  const model::ModelParameters* model = nullptr;
  std::string_view strategy;
  const model::ModelParameters* strategy_state = nullptr;
  std::string_view round_record;
  const std::map<std::string, std::uint32_t>* offences = nullptr;
  std::span<const double> privacy_rdp;
  double clip_norm = 0;
};

void write_model_file(const std::filesystem::path& path, const ModelFileRef& file);
void write_model_file(const std::filesystem::path& path, const ModelFile& file);
// The bytes write_model_file writes (for a store that seals them itself).
std::string encode_model_file(const ModelFile& file);
// Throws sotto::Error naming the file and what is wrong with it (missing, not a Sotto model file, truncated).
ModelFile read_model_file(const std::filesystem::path& path);
// The same from a stream of `size` bytes named `name` in errors (the fuzzer's entry; read_model_file opens a file).
ModelFile parse_model_file(std::istream& in, std::size_t size, const std::string& name);

}  // namespace sotto::codec
