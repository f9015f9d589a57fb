// The C API (include/sotto/sotto_client.h) over client::Client: creating a client, consent, running, eligibility
// and caps. Handles, status codes and thread-local error messages outside, exceptions inside (c_api_handle.h).
#include "sotto/sotto_client.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "client/c_api_handle.h"
#include "client/session_outcome.h"
#include "client/state_store.h"
#include "common/model/personal_tensors.h"
#include "common/util/error.h"

namespace {

using namespace sotto;
using client::c_api::fail;

thread_local std::string last_error;
std::atomic<std::uint64_t> next_serial{1};

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

sotto_client::sotto_client() : serial(next_serial++) {}

bool sotto_client::training_failed() const {
  return (callback && callback->failed) || (model_trainer && model_trainer->failed);
}

namespace sotto::client::c_api {

sotto_status fail(sotto_status status, const std::string& message) {
  last_error = message;
  return status;
}

sotto_status load_config(const sotto_client_options& options, SottoClientConfig& config) {
  try {
    config = load_sotto_client_config(options.config_file);
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_CONFIG, e.what());
  }
  ClientConfig& c = config.client;
  if (!c.state_dir.empty() && !options.state_key) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "the config has state.dir: sotto_client_options.state_key (32 bytes) "
                                              "must be given to seal it");
  }
  if (options.state_key) {
    c.state_key.emplace();
    std::memcpy(c.state_key->data(), options.state_key, c.state_key->size());
  }
  c.state_min_generation = options.state_min_generation;
  return SOTTO_OK;
}

sotto_status finish_create(std::unique_ptr<sotto_client> handle, SottoClientConfig config,
                           std::shared_ptr<Trainer> trainer, sotto_client** out) {
  try {
    handle->client = std::make_unique<Client>(std::move(config.client), std::move(trainer));
  } catch (const StateError& e) {
    return fail(SOTTO_ERROR_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_CONFIG, e.what());
  }
  sotto_client* raw = handle.release();
  raw->client->on_event([raw](const ClientEvent& e) {
    if (!raw->on_event) return;
    const sotto_event event{static_cast<sotto_event_kind>(e.kind), e.round_id, e.message.c_str(), e.value};
    raw->on_event(raw->event_user, &event);
  });
  *out = raw;
  return SOTTO_OK;
}

}  // namespace sotto::client::c_api

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

void sotto_set_training_error(const char* message) { client::training_error() = message ? message : ""; }

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
  client::SottoClientConfig config;
  if (const sotto_status s = client::c_api::load_config(*options, config); s != SOTTO_OK) return s;
  auto handle = std::make_unique<sotto_client>();
  handle->callback = std::make_shared<client::CallbackTrainer>(train, train_user);
  handle->callback->set_threads(config.client.limits.training_threads);
  auto trainer = handle->callback;
  return client::c_api::finish_create(std::move(handle), std::move(config), std::move(trainer), out);
}

void sotto_client_destroy(sotto_client* client) {
  if (client) client::c_api::forget_ledger_read(*client);
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
    if (!granted && c->model_trainer) c->model_trainer->forget_trained_model();  // predict uses it no more
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
  if (!c->callback) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_set_initial_model: this client trains the config's model "
                                              "itself, which gives the initial weights");
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
    c->callback->set_initial_model(model::ModelParameters(std::move(copied)));
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
  if (c->callback) c->callback->failed = false;
  if (c->model_trainer) c->model_trainer->failed = false;
  try {
    s = c->client->run();
  } catch (const std::exception& e) {
    // A training run cut short by a stop or an opt-out is how the app asked it to end, not a failure.
    if (!c->stop || c->training_failed()) {
      if (c->training_failed()) return fail(SOTTO_ERROR_TRAINING, e.what());
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

int sotto_client_should_stop(sotto_client* c) {
  return c && (c->stop || (c->callback && c->callback->stopping())) ? 1 : 0;
}

int sotto_client_next_batch(sotto_client* c) { return c && c->callback && c->callback->next_batch() ? 1 : 0; }

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
  if (limits.training_threads > 0) {  // 0 keeps the config's
    if (c->callback) c->callback->set_threads(limits.training_threads);
    if (c->model_trainer) c->model_trainer->set_threads(limits.training_threads);
  }
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

}  // extern "C"

static_assert(static_cast<int>(client::ClientEventKind::kAwaitingConsent) == SOTTO_EVENT_AWAITING_CONSENT);
static_assert(static_cast<int>(client::ClientEventKind::kFinished) == SOTTO_EVENT_FINISHED);
static_assert(static_cast<int>(client::ClientEventKind::kIneligible) == SOTTO_EVENT_INELIGIBLE);
