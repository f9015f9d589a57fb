// The C API (include/sotto/sotto_client.h) over client::Client: handles, status codes and thread-local error
// messages outside, exceptions inside. Every entry point catches everything: no C++ exception crosses into C.
#include "sotto/sotto_client.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/client.h"
#include "client/ledger.h"
#include "client/session_outcome.h"
#include "client/state_store.h"
#include "common/ml/personalized_fit.h"
#include "common/model/personal_tensors.h"
#include "common/util/error.h"

namespace {

using namespace sotto;

thread_local std::string last_error;
thread_local std::string training_error;

sotto_status fail(sotto_status status, const std::string& message) {
  last_error = message;
  return status;
}

// The app's held-out figures, if it gave any; throws for accuracies outside [0, 1].
std::optional<ml::LocalEvaluation> held_out_measure(const sotto_fit_result& r) {
  if (r.held_out_examples == 0) return std::nullopt;
  for (double a : {r.held_out_global_accuracy, r.held_out_personal_accuracy}) {
    if (!(a >= 0 && a <= 1)) {
      throw Error("the training callback reported a held-out accuracy of " + std::to_string(a) +
                  "; accuracies are fractions in [0, 1]");
    }
  }
  return ml::LocalEvaluation{r.held_out_examples, r.held_out_global_accuracy, r.held_out_personal_accuracy};
}

// The app's sotto_train_fn as a client::Trainer: the global model's float32 tensors are handed over in place, and
// the run's TrainingControl is reachable from the callback (sotto_client_next_batch) while it runs.
class CallbackTrainer final : public client::Trainer {
 public:
  CallbackTrainer(sotto_train_fn train, void* user) : train_(train), user_(user) {}

  client::FitResult fit(const model::ModelParameters& global, const ml::TrainingPlan& plan,
                        client::TrainingControl& control) override {
    const model::PersonalTensors personal(plan.personal);
    model::ModelParameters local = with_personal_tensors(global, personal);
    std::vector<sotto_tensor> views;
    for (auto& t : local.mutable_tensors()) {
      if (t.dtype != model::DType::kFloat32) continue;
      const auto data = t.as_mutable<float>();
      views.push_back({t.name.c_str(), data.data(), data.size(), t.shape.data(), t.shape.size()});
    }
    const sotto_training_plan p{plan.epochs,       plan.batch_size,      plan.learning_rate, plan.momentum,
                                plan.weight_decay, plan.seed,            plan.head_epochs,   plan.finetune_epochs,
                                plan.ditto_lambda, &personal,            threads_.load()};
    sotto_fit_result result{};
    training_error.clear();
    const sotto_status status = train_with(control, views, p, result);
    if (auto reason = control.stop_reason()) throw client::TrainingStopped(*reason);
    if (status != SOTTO_OK || result.num_examples == 0) {
      failed = true;
      throw Error(status != SOTTO_OK ? (training_error.empty() ? sotto_status_name(status) : training_error)
                                     : "the training callback reported 0 examples");
    }
    client::FitResult fit{std::move(local), {result.num_examples, 0, result.mean_loss, result.accuracy, 0, 0}};
    fit.local_evaluation = held_out_measure(result);
    return fit;
  }

  void set_initial_model(model::ModelParameters initial) {
    std::lock_guard lock(mutex_);
    initial_ = std::move(initial);
  }

  void set_threads(int threads) { threads_ = static_cast<std::uint32_t>(threads); }

  // For the callback: the running control's answer; false when no training runs, or on another thread than the
  // training's. No lock is held while the control asks the app's eligibility check, which may call back in.
  bool next_batch() {
    return training_here.trainer == this && training_here.control->next_batch();
  }
  // From any thread.
  bool stopping() {
    if (training_here.trainer == this) return training_here.control->stop_reason().has_value();
    std::lock_guard lock(mutex_);
    return control_ && control_->stop_reason().has_value();
  }

  bool failed = false;

 private:
  // The round's model: `global` with the device's personal tensors — those kept from its last round (the round
  // driver adds them), or on its first such round the app's initial ones.
  model::ModelParameters with_personal_tensors(const model::ModelParameters& global,
                                               const model::PersonalTensors& personal) {
    if (personal.empty() || personal.first_personal(global)) return global;
    std::lock_guard lock(mutex_);
    if (!initial_) {
      throw Error("the plan keeps tensors on the device (personalization.personal = [" + personal.describe() +
                  "]) and this device has none yet: give the app's initial model with sotto_client_set_initial_model "
                  "before sotto_client_run");
    }
    return ml::complete_with_personal(global, [&] { return *initial_; }, personal);
  }

  // The app's callback, with the run's control reachable from it: through training_here on this thread (no lock,
  // as fit() is on the stack), through control_ under the lock from others.
  sotto_status train_with(client::TrainingControl& control, std::vector<sotto_tensor>& views,
                          const sotto_training_plan& plan, sotto_fit_result& result) {
    set_control(&control);
    training_here = {this, &control};
    struct Unset {
      CallbackTrainer& trainer;
      ~Unset() {
        training_here = {};
        trainer.set_control(nullptr);
      }
    } unset{*this};
    return train_(user_, views.data(), views.size(), &plan, &result);
  }

  void set_control(client::TrainingControl* control) {
    std::lock_guard lock(mutex_);
    control_ = control;
  }

  struct TrainingHere {
    const CallbackTrainer* trainer = nullptr;
    client::TrainingControl* control = nullptr;
  };
  static thread_local TrainingHere training_here;  // the training run on this thread, if any

  sotto_train_fn train_;
  void* user_;
  std::atomic<std::uint32_t> threads_{0};
  std::mutex mutex_;
  client::TrainingControl* control_ = nullptr;  // for other threads, under mutex_
  std::optional<model::ModelParameters> initial_;  // sotto_client_set_initial_model's
};

thread_local CallbackTrainer::TrainingHere CallbackTrainer::training_here;

// sotto_eligibility_fn as a client::EligibilityCheck.
client::EligibilityCheck eligibility_check(sotto_eligibility_fn check, void* user) {
  if (!check) return {};
  return [check, user]() -> std::optional<std::string> {
    char reason[256] = "";
    if (check(user, reason, sizeof reason)) return std::nullopt;
    reason[sizeof reason - 1] = '\0';
    return std::string(reason[0] ? reason : "the app says the device is not eligible");
  };
}

}  // namespace

namespace {

// The ledger as sotto_client_ledger_size last read it on this thread, per handle (by serial number, never reused):
// its strings stay valid until this thread reads that handle's ledger again, as the header promises. A thread's
// copies go with the thread, or with the handle when it destroys it.
thread_local std::unordered_map<std::uint64_t, std::vector<sotto::client::LedgerEntry>> ledger_read;
std::atomic<std::uint64_t> next_serial{1};

}  // namespace

struct sotto_client {
  const std::uint64_t serial = next_serial++;
  std::atomic<bool> stop{false};
  std::shared_ptr<CallbackTrainer> trainer;
  std::unique_ptr<client::Client> client;
  sotto_event_fn on_event = nullptr;
  void* event_user = nullptr;
};

extern "C" {

const char* sotto_last_error(void) { return last_error.c_str(); }

const char* sotto_status_name(sotto_status status) {
  switch (status) {
    case SOTTO_OK: return "SOTTO_OK";
    case SOTTO_ERROR_INVALID_ARGUMENT: return "SOTTO_ERROR_INVALID_ARGUMENT";
    case SOTTO_ERROR_CONFIG: return "SOTTO_ERROR_CONFIG";
    case SOTTO_ERROR_STATE: return "SOTTO_ERROR_STATE";
    case SOTTO_ERROR_NO_CONSENT: return "SOTTO_ERROR_NO_CONSENT";
    case SOTTO_ERROR_NETWORK: return "SOTTO_ERROR_NETWORK";
    case SOTTO_ERROR_TRAINING: return "SOTTO_ERROR_TRAINING";
    case SOTTO_ERROR_INTERNAL: return "SOTTO_ERROR_INTERNAL";
  }
  return "unknown sotto_status";
}

int sotto_api_version(void) { return SOTTO_CLIENT_API_VERSION; }

void sotto_set_training_error(const char* message) { training_error = message ? message : ""; }

int sotto_tensor_is_personal(const sotto_training_plan* plan, const char* tensor_name) {
  if (!plan || !plan->personalization || !tensor_name) return 0;
  return static_cast<const model::PersonalTensors*>(plan->personalization)->is_personal(tensor_name) ? 1 : 0;
}

sotto_status sotto_client_create(const sotto_client_options* options, sotto_train_fn train, void* train_user,
                                 sotto_client** out) {
  if (!options || !options->config_file || !train || !out) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_create needs options with a config_file, a training "
                                              "callback and somewhere to put the client");
  }
  client::ClientConfig config;
  try {
    config = client::load_sotto_client_config(options->config_file).client;
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_CONFIG, e.what());
  }
  if (!config.state_dir.empty() && !options->state_key) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "the config has state.dir: sotto_client_options.state_key (32 bytes) "
                                              "must be given to seal it");
  }
  if (options->state_key) {
    config.state_key.emplace();
    std::memcpy(config.state_key->data(), options->state_key, config.state_key->size());
  }
  config.state_min_generation = options->state_min_generation;
  auto handle = std::make_unique<sotto_client>();
  handle->trainer = std::make_shared<CallbackTrainer>(train, train_user);
  handle->trainer->set_threads(config.limits.training_threads);
  try {
    handle->client = std::make_unique<client::Client>(std::move(config), handle->trainer);
  } catch (const client::StateError& e) {
    return fail(SOTTO_ERROR_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_CONFIG, e.what());
  }
  sotto_client* raw = handle.release();
  raw->client->on_event([raw](const client::ClientEvent& e) {
    if (!raw->on_event) return;
    const sotto_event event{static_cast<sotto_event_kind>(e.kind), e.round_id, e.message.c_str(), e.value};
    raw->on_event(raw->event_user, &event);
  });
  *out = raw;
  return SOTTO_OK;
}

void sotto_client_destroy(sotto_client* client) {
  if (client) ledger_read.erase(client->serial);
  delete client;
}

sotto_status sotto_client_set_consent(sotto_client* c, int granted, unsigned scope, int delete_ledger) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_consent: the client is null");
  if (granted && (scope == 0 || scope > (SOTTO_CONSENT_TRAINING | SOTTO_CONSENT_ANALYTICS))) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_consent: the scope must combine "
                                              "SOTTO_CONSENT_TRAINING and SOTTO_CONSENT_ANALYTICS");
  }
  try {
    c->client->set_consent(granted != 0, static_cast<client::ConsentScope>(scope),
                           delete_ledger ? client::OnRevoke::kDeleteLedger : client::OnRevoke::kKeepLedger);
    return SOTTO_OK;
  } catch (const client::StateError& e) {
    return fail(SOTTO_ERROR_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INTERNAL, e.what());
  }
}

sotto_status sotto_client_get_consent(sotto_client* c, int* granted, unsigned* scope, double* unix_time) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_get_consent: the client is null");
  const client::ConsentRecord r = c->client->consent();
  if (granted) *granted = r.granted ? 1 : 0;
  if (scope) *scope = static_cast<unsigned>(r.scope);
  if (unix_time) *unix_time = r.unix_time;
  return SOTTO_OK;
}

sotto_status sotto_client_set_initial_model(sotto_client* c, const sotto_tensor* tensors, size_t count) {
  if (!c || (!tensors && count > 0)) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_initial_model: the client or the tensors are null");
  }
  try {
    std::vector<model::Tensor> copied;
    for (std::size_t i = 0; i < count; ++i) {
      const sotto_tensor& t = tensors[i];
      if (!t.name || (!t.data && t.count > 0) || (!t.shape && t.rank > 0)) {
        return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_initial_model: tensor " + std::to_string(i) +
                                                      " has a null name, data or shape");
      }
      model::Tensor copy{t.name, model::DType::kFloat32, std::vector<std::int64_t>(t.shape, t.shape + t.rank), {}};
      if (model::element_count(copy.shape) != t.count) {
        return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_initial_model: tensor '" + copy.name + "' has " +
                                                      std::to_string(t.count) + " floats but shape " +
                                                      model::shape_string(copy.shape));
      }
      const auto* bytes = reinterpret_cast<const std::byte*>(t.data);
      copy.data.assign(bytes, bytes + t.count * sizeof(float));
      copied.push_back(std::move(copy));
    }
    c->trainer->set_initial_model(model::ModelParameters(std::move(copied)));
    return SOTTO_OK;
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, std::string("sotto_client_set_initial_model: ") + e.what());
  }
}

sotto_status sotto_client_on_event(sotto_client* c, sotto_event_fn on_event, void* user) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_on_event: the client is null");
  c->on_event = on_event;
  c->event_user = user;
  return SOTTO_OK;
}

sotto_status sotto_client_run(sotto_client* c, sotto_run_summary* summary) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_run: the client is null");
  client::RunSummary s;
  c->trainer->failed = false;
  try {
    s = c->client->run();
  } catch (const std::exception& e) {
    // A training run cut short by a stop or an opt-out is how the app asked it to end, not a failure.
    if (!c->stop || c->trainer->failed) {
      if (c->trainer->failed) return fail(SOTTO_ERROR_TRAINING, e.what());
      if (dynamic_cast<const client::StateError*>(&e)) return fail(SOTTO_ERROR_STATE, e.what());
      return fail(dynamic_cast<const client::FatalError*>(&e) ? SOTTO_ERROR_NETWORK : SOTTO_ERROR_INTERNAL, e.what());
    }
    s.consent_revoked = !c->client->consent().granted;
  }
  if (summary) *summary = {s.finished ? 1 : 0, s.consent_revoked ? 1 : 0, s.rounds_contributed};
  return SOTTO_OK;
}

sotto_status sotto_client_stop(sotto_client* c) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_stop: the client is null");
  c->stop = true;
  try {
    c->client->stop();
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INTERNAL, e.what());
  }
  return SOTTO_OK;
}

int sotto_client_should_stop(sotto_client* c) { return c && (c->stop || c->trainer->stopping()) ? 1 : 0; }

int sotto_client_next_batch(sotto_client* c) { return c && c->trainer->next_batch() ? 1 : 0; }

sotto_status sotto_client_cancel(sotto_client* c) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_cancel: the client is null");
  try {
    c->client->cancel();
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INTERNAL, e.what());
  }
  return SOTTO_OK;
}

sotto_status sotto_client_set_limits(sotto_client* c, unsigned training_threads, double round_wall_time_s,
                                     uint64_t max_update_bytes, uint64_t bytes_per_day) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_limits: the client is null");
  if (training_threads > 256 || !(round_wall_time_s >= 0 && round_wall_time_s <= 1e7)) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_limits: training_threads must be 0-256 and "
                                              "round_wall_time_s 0-1e7 seconds (0 = no cap)");
  }
  client::DeviceLimits limits;
  limits.training_threads = static_cast<int>(training_threads);
  limits.round_wall_time = std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(round_wall_time_s * 1000)));
  limits.max_update_bytes = max_update_bytes;
  limits.bytes_per_day = bytes_per_day;
  try {
    c->client->set_limits(limits);
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, e.what());
  }
  c->trainer->set_threads(limits.training_threads);
  return SOTTO_OK;
}

sotto_status sotto_client_set_eligibility(sotto_client* c, sotto_eligibility_fn check, void* user) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_eligibility: the client is null");
  try {
    c->client->set_eligibility(eligibility_check(check, user));
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INTERNAL, e.what());
  }
  return SOTTO_OK;
}

sotto_status sotto_client_eligibility_changed(sotto_client* c) {
  if (!c) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_eligibility_changed: the client is null");
  c->client->eligibility_changed();
  return SOTTO_OK;
}

uint64_t sotto_client_state_generation(sotto_client* c) { return c ? c->client->state_generation() : 0; }

sotto_status sotto_client_ledger_size(sotto_client* c, size_t* count) {
  if (!c || !count) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_ledger_size: a null argument");
  std::vector<client::LedgerEntry>& ledger = ledger_read[c->serial];
  try {
    ledger = client::parse_ledger_lines(c->client->ledger_json());
  } catch (const client::StateError& e) {
    return fail(SOTTO_ERROR_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INTERNAL, e.what());
  }
  *count = ledger.size();
  return SOTTO_OK;
}

sotto_status sotto_client_ledger_entry(sotto_client* c, size_t index, sotto_ledger_entry* out) {
  if (!c || !out) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_ledger_entry: a null argument");
  const auto read = ledger_read.find(c->serial);
  const std::size_t size = read == ledger_read.end() ? 0 : read->second.size();
  if (index >= size) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_ledger_entry: index " + std::to_string(index) +
                                                  " is beyond the " + std::to_string(size) +
                                                  " entries sotto_client_ledger_size read on this thread");
  }
  const client::LedgerEntry& e = read->second[index];
  *out = {e.unix_time,  e.round_id,       e.outcome.c_str(), e.num_examples, e.bytes_sent, e.bytes_received,
          e.train_loss, e.update_l2_norm, e.secure ? 1 : 0,  e.clip_norm,    0,            "",
          0,            0,                0};
  if (e.privacy) {
    out->has_privacy = 1;
    out->privacy_mode = e.privacy->mode.c_str();
    out->noise_multiplier = e.privacy->noise_multiplier;
    out->epsilon = e.privacy->epsilon;
    out->epsilon_stated = e.privacy->epsilon_stated;
  }
  return SOTTO_OK;
}

const char* sotto_client_ledger_reason(sotto_client* c, size_t index) {
  if (!c) return nullptr;
  const auto read = ledger_read.find(c->serial);
  if (read == ledger_read.end() || index >= read->second.size()) return nullptr;
  return read->second[index].reason.c_str();
}

}  // extern "C"

static_assert(static_cast<int>(client::ClientEventKind::kAwaitingConsent) == SOTTO_EVENT_AWAITING_CONSENT);
static_assert(static_cast<int>(client::ClientEventKind::kFinished) == SOTTO_EVENT_FINISHED);
static_assert(static_cast<int>(client::ClientEventKind::kIneligible) == SOTTO_EVENT_INELIGIBLE);
