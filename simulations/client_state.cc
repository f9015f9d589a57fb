#include "simulations/client_state.h"

#include "common/ml/personalized_fit.h"
#include "common/model/personal_tensors.h"
#include "common/util/error.h"

namespace sotto::sim {

namespace {

// The whole model as the client holds it before a round: the initial model with its own personal tensors.
model::ModelParameters own_model(const model::ModelParameters& initial, const ClientState& state) {
  if (!state.personal_tensors) return initial;
  return model::with_tensors(initial, *state.personal_tensors);
}

ml::TrainPhase trainer_of(ml::ImageModel& model, const ClientData& data) {
  return [&model, &data](const ml::TrainingPlan& plan) { return model.train(data.train, data.examples, plan); };
}

}  // namespace

const ClientState* ClientStates::find(ClientIndex client) const {
  auto it = states_.find(client);
  return it == states_.end() ? nullptr : &it->second;
}

ClientState* ClientStates::find(ClientIndex client) {
  auto it = states_.find(client);
  return it == states_.end() ? nullptr : &it->second;
}

round::Fitted fit_with_state(ml::ImageModel& model, const ClientData& data, const model::ModelParameters& global,
                             const model::ModelParameters& initial, const ml::TrainingPlan& plan, ClientState& state) {
  const model::PersonalTensors personal(plan.personal);
  model.load(ml::complete_with_personal(global, [&] { return own_model(initial, state); }, personal));
  const data::ImageDataset local_test = data::subset(data.train, data.local_test);
  ml::PersonalizedFit fit = ml::fit_personalized(model, plan, trainer_of(model, data), state.personal_model, local_test);
  if (!personal.empty()) state.personal_tensors = personal.personal_part(fit.local_model);
  if (plan.ditto_lambda > 0) state.personal_model = std::move(fit.personal_model);  // fine-tuning starts afresh
  ++state.rounds_trained;
  round::Fitted fitted;
  fitted.metrics = fit.metrics;
  fitted.local_evaluation = fit.local_evaluation;
  fitted.local_model = personal.empty() ? std::move(fit.local_model) : personal.federated_part(fit.local_model);
  return fitted;
}

ml::LocalEvaluation train_alone(ml::ImageModel& model, const ClientData& data, const model::ModelParameters& initial,
                                const ml::TrainingPlan& plan, ClientState& state) {
  if (data.local_test.empty()) throw Error("the client holds no examples out (evaluation.local_fraction is 0)");
  const data::ImageDataset local_test = data::subset(data.train, data.local_test);
  model.load(state.personal_model ? *state.personal_model : initial);
  ml::LocalEvaluation e;
  e.examples = local_test.size();
  e.global_accuracy = model.evaluate(local_test).accuracy;
  model.train(data.train, data.examples, plan);
  e.personal_accuracy = model.evaluate(local_test).accuracy;
  state.personal_model = model.parameters();
  ++state.rounds_trained;
  return e;
}

ml::LocalEvaluation evaluate_client(ml::ImageModel& model, const ClientData& data, const model::ModelParameters* global,
                                    const model::ModelParameters& initial, const ml::TrainingPlan& plan,
                                    const ClientState& state) {
  const data::ImageDataset local_test = data::subset(data.train, data.local_test);
  if (!global) {  // the baseline: its own model is both
    model.load(state.personal_model ? *state.personal_model : initial);
    const double accuracy = model.evaluate(local_test).accuracy;
    return {local_test.size(), accuracy, accuracy};
  }
  model.load(ml::complete_with_personal(*global, [&] { return own_model(initial, state); },
                                        model::PersonalTensors(plan.personal)));
  return ml::evaluate_personalization(model, plan, trainer_of(model, data), state.personal_model, local_test);
}

}  // namespace sotto::sim
