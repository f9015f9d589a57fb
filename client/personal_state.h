// PersonalState: the personal tensors of this device's model (plan.personal: a personal head, BatchNorm
// statistics), kept between rounds and across restarts, never sent. With a state store (state_store.h) they are
// sealed in it — encrypted and authenticated under the device's state key — as one file; without one they live in
// the process's memory. It is the one place the client keeps them, so other storage can take its place.
#pragma once

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
  void erase();

 private:
  StateStore* store_;
  model::ModelParameters memory_;
};

// Its file in the state store.
inline constexpr const char* kPersonalStateFile = "personal-model.sotto";

}  // namespace sotto::client
