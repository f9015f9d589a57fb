#include "aggregator/strategy.h"

#include "common/util/error.h"

namespace sotto::aggregator {

void Strategy::load_state(const model::ModelParameters& state, const model::ModelParameters&) {
  if (!state.empty()) {
    throw Error(name() + " keeps no state between rounds, but the checkpoint holds " + std::to_string(state.size()) +
                " state tensors: it was written by another strategy");
  }
}

}  // namespace sotto::aggregator
