// ClientState: what a virtual client keeps between the rounds it trains in, as a device keeps it in its state
// store — its personal tensors (personalization.personal: FedPer, FedRep, FedBN) and its personal model (Ditto's v,
// or the local-only baseline's whole model) — and the three things a client does with it: train in a round, train
// alone (the baseline), and measure itself on its held-out examples after the last round.
//
// A client that has not trained yet holds the initial model's tensors, as a device that built its model from the
// same seed. States are made before a round's training starts (ClientStates::of is not thread-safe); each worker
// then touches only its own client's. A state costs its tensors: a personal head is small, a whole model for Ditto
// or the baseline is the model's size per client that has trained.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>

#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "common/model/parameters.h"
#include "common/round/participant.h"

namespace sotto::sim {

using ClientIndex = std::uint64_t;

struct ClientState {
  std::optional<model::ModelParameters> personal_tensors;  // the personal part of the model it last trained
  std::optional<model::ModelParameters> personal_model;    // Ditto's v; the baseline's model
  std::uint64_t rounds_trained = 0;
};

class ClientStates {
 public:
  // The client's state, made empty on first use.
  ClientState& of(ClientIndex client) { return states_[client]; }
  const ClientState* find(ClientIndex client) const;
  ClientState* find(ClientIndex client);
  std::size_t size() const { return states_.size(); }

 private:
  std::map<ClientIndex, ClientState> states_;  // node-based: references stay valid as clients are added
};

// One client's examples: those it trains on and those it holds out.
struct ClientData {
  const data::ImageDataset& train;
  std::span<const std::uint32_t> examples;
  std::span<const std::uint32_t> local_test;
};

// A round's training of the client from `global` (only the federated tensors when the plan has personal ones),
// personalized per the plan: what the participant sends (the federated part of the trained model) and the local
// evaluation. Updates `state`.
round::Fitted fit_with_state(ml::ImageModel& model, const ClientData& data, const model::ModelParameters& global,
                             const model::ModelParameters& initial, const ml::TrainingPlan& plan, ClientState& state);

// The local-only baseline's round: the client's own model (the initial one at first) trained for the plan's
// epochs, then measured on the held-out examples (global_accuracy is that of the model it started the round with).
ml::LocalEvaluation train_alone(ml::ImageModel& model, const ClientData& data, const model::ModelParameters& initial,
                                const ml::TrainingPlan& plan, ClientState& state);

// After the last round, on the held-out examples: `global` with the client's personal tensors, against its
// personal model (ml::evaluate_personalization; the baseline's own model when `global` is null).
ml::LocalEvaluation evaluate_client(ml::ImageModel& model, const ClientData& data, const model::ModelParameters* global,
                                    const model::ModelParameters& initial, const ml::TrainingPlan& plan,
                                    const ClientState& state);

}  // namespace sotto::sim
