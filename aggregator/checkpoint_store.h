// CheckpointStore: the aggregator's durable training state in its state directory. checkpoint.sotto holds the
// global model, the round counters and the strategy's state (a server optimizer's moments), and is written
// atomically after every round, before the next round starts; with state.keep_round_models, model-round-<r>.sotto
// keeps each completed round's model beside it.
//
// On start it loads and checks the checkpoint: every record's checksum and the file's format version
// (common/codec/model_file.h), the model's layout against the configured architecture, the strategy that wrote the
// state, and that every value is finite. Each refusal names the file and says how to recover. Later state (the
// privacy accountant's, metrics) joins as new fields of the checkpoint under a new format version.
#pragma once

#include <filesystem>
#include <string>

#include "aggregator/round_coordinator.h"
#include "common/model/parameters.h"

namespace sotto::aggregator {

struct CheckpointStoreOptions {
  std::filesystem::path state_dir;
  std::string model;  // the configured model (ModelSpec::describe()), for the messages
  std::string strategy;      // strategy.name: a checkpoint written by another strategy is refused
  bool keep_round_models = false;
};

class CheckpointStore {
 public:
  explicit CheckpointStore(CheckpointStoreOptions options);

  // The checkpoint when there is one, checked against `fresh` (the configured model as a new training would
  // start it); otherwise `fresh` as round 0, written at once. Throws sotto::Error saying what is wrong and what
  // to do.
  CoordinatorStart load_or_create(model::ModelParameters fresh) const;

  // After a round closed: the new checkpoint, carrying the round's rounds.jsonl record (JSON), and the round's
  // model when kept.
  void save(const action::RoundClosed& closed, const std::string& round_record = {}) const;

  // The record the checkpoint carries (empty for none), read by load_or_create.
  const std::string& carried_record() const { return carried_record_; }

  std::filesystem::path checkpoint_path() const { return options_.state_dir / "checkpoint.sotto"; }
  std::filesystem::path round_model_path(std::uint64_t round_id) const;

 private:
  CoordinatorStart load(model::ModelParameters fresh) const;
  std::string recovery_advice() const;

  CheckpointStoreOptions options_;
  mutable std::string carried_record_;
};

}  // namespace sotto::aggregator
