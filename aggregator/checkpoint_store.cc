#include "aggregator/checkpoint_store.h"

#include <spdlog/spdlog.h>

#include "common/codec/model_file.h"
#include "common/util/error.h"

namespace sotto::aggregator {

CheckpointStore::CheckpointStore(CheckpointStoreOptions options) : options_(std::move(options)) {}

std::filesystem::path CheckpointStore::round_model_path(std::uint64_t round_id) const {
  return options_.state_dir / ("model-round-" + std::to_string(round_id) + ".sotto");
}

CoordinatorStart CheckpointStore::load_or_create(model::ModelParameters fresh) const {
  if (std::filesystem::exists(checkpoint_path())) return load(std::move(fresh));
  codec::write_model_file(checkpoint_path(), codec::ModelFileRef{.model = &fresh, .strategy = options_.strategy});
  if (options_.keep_round_models) codec::write_model_file(round_model_path(0), codec::ModelFileRef{.model = &fresh});
  spdlog::info("starting a new training: {} tensors, {} parameters", fresh.size(), fresh.total_elements());
  return {std::move(fresh), 1, 0, {}};
}

CoordinatorStart CheckpointStore::load(model::ModelParameters fresh) const {
  const auto path = checkpoint_path();
  codec::ModelFile file;
  try {
    file = codec::read_model_file(path);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + recovery_advice());
  }
  if (auto mismatch = file.model.layout_mismatch(fresh)) {
    throw Error("checkpoint " + path.string() + " does not match " + options_.model + " ([model] in the config): " +
                *mismatch + "; point state.dir elsewhere to start a new training");
  }
  if (!file.strategy.empty() && file.strategy != options_.strategy) {
    throw Error("checkpoint " + path.string() + " was written by strategy \"" + file.strategy +
                "\" but strategy.name is \"" + options_.strategy +
                "\"; keep the strategy to resume, or point state.dir elsewhere to start a new training");
  }
  for (const auto* part : {&file.model, &file.strategy_state}) {
    if (auto bad = part->first_non_finite()) {
      throw Error("checkpoint " + path.string() + " holds a non-finite value (" + *bad + ")" +
                  (part == &file.model ? " in the global model" : " in the strategy's state") +
                  ": the training diverged before it was written" + recovery_advice());
    }
  }
  spdlog::info("resuming from {}: {} rounds completed, next round {}", path.string(), file.completed_rounds,
               file.next_round_id);
  carried_record_ = std::move(file.round_record);
  return {std::move(file.model), file.next_round_id, file.completed_rounds, std::move(file.strategy_state),
          std::move(file.offences), std::move(file.privacy_rdp), file.clip_norm};
}

void CheckpointStore::save(const action::RoundClosed& closed, const std::string& round_record) const {
  // By reference: the checkpoint streams the model to disk without copying it.
  codec::write_model_file(checkpoint_path(), codec::ModelFileRef{.next_round_id = closed.next_round_id,
                                                                 .completed_rounds = closed.completed_rounds,
                                                                 .model = closed.global_model.get(),
                                                                 .strategy = closed.strategy,
                                                                 .strategy_state = closed.strategy_state.get(),
                                                                 .round_record = round_record,
                                                                 .offences = &closed.offences,
                                                                 .privacy_rdp = closed.privacy_rdp,
                                                                 .clip_norm = closed.clip_norm});
  if (closed.report.completed && options_.keep_round_models) {
    codec::write_model_file(round_model_path(closed.report.round_id),
                            codec::ModelFileRef{.next_round_id = closed.next_round_id,
                                                .completed_rounds = closed.completed_rounds,
                                                .model = closed.global_model.get()});
  }
}

std::string CheckpointStore::recovery_advice() const {
  if (options_.keep_round_models) {
    return ". To go back to an earlier round, copy its model-round-<r>.sotto from " + options_.state_dir.string() +
           " over checkpoint.sotto (a round model carries no strategy state: a server optimizer restarts its "
           "moments); or point state.dir elsewhere to start a new training";
  }
  return ". Restore checkpoint.sotto from a backup, or point state.dir elsewhere to start a new training "
         "(state.keep_round_models = true keeps every round's model to go back to)";
}

}  // namespace sotto::aggregator
