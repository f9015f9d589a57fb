// PersonalState: what stays on this device between rounds and across restarts, never sent: the personal tensors of
// its model (plan.personal: a personal head, BatchNorm statistics), and its personal model from local adaptation
// (fine-tuned, or Ditto's), the model the app uses. With a state store (state_store.h) they are
// sealed in it — encrypted and authenticated under the device's state key — as one file; without one they live in
// the process's memory. It is the one place the client keeps them, so other storage can take its place.
// Thread-safe: the app may read them (for inference) while a round saves new ones.
#pragma once

#include <mutex>

#include "client/state_store.h"
#include "common/model/parameters.h"

namespace sotto::client {

class PersonalState {
 public:
  explicit PersonalState(StateStore* store) : store_(store) {}

  // The kept tensors (none before the first round with personal tensors). Throws sotto::Error when the sealed file
  // does not open or parse, naming it.
  model::ModelParameters load() const;
  void save(const model::ModelParameters& personal);
  // The personal model (empty before the first round that adapts one), and its replacement.
  model::ModelParameters load_personal_model() const;
  void save_personal_model(const model::ModelParameters& model);
  // Both.
  void erase();

 private:
  model::ModelParameters load_file(const char* name, const model::ModelParameters& memory) const;
  void save_file(const char* name, const model::ModelParameters& params, model::ModelParameters& memory);

  StateStore* store_;
  mutable std::mutex mutex_;  // for the two below (the store is thread-safe itself)
  model::ModelParameters tensors_;
  model::ModelParameters personal_model_;
};

// Their files in the state store.
inline constexpr const char* kPersonalStateFile = "personal-tensors.sotto";
inline constexpr const char* kPersonalModelFile = "personal-model.sotto";

}  // namespace sotto::client
