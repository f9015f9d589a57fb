// The C API's handle (sotto_client) and what its translation units share: c_api.cc (creating, consent, running),
// c_api_ledger.cc (the ledger) and c_api_model.cc (the library's own training and inference). Internal to
// libsotto_client.so. Every entry point catches everything: no C++ exception crosses into C.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "client/app_data_trainer.h"
#include "client/c_api_callback_trainer.h"
#include "client/client.h"
#include "sotto/sotto_client.h"

struct sotto_client {
  sotto_client();
  const std::uint64_t serial;  // never reused: keys the per-thread ledger copies
  std::atomic<bool> stop{false};
  // The training: the app's callback (sotto_client_create), or the library's own (create_model_trainer).
  std::shared_ptr<sotto::client::CallbackTrainer> callback;
  std::shared_ptr<sotto::client::AppDataTrainer> model_trainer;
  std::unique_ptr<sotto::client::Client> client;
  sotto_event_fn on_event = nullptr;
  void* event_user = nullptr;

  // The latest run's training failed in the app's code, its examples, or the model (not stopped, not the network).
  bool training_failed() const;
};

namespace sotto::client::c_api {

// Records `message` as this thread's sotto_last_error() and returns `status`.
sotto_status fail(sotto_status status, const std::string& message);

// The client config `options` names into `config`, with the state key and generation the options give. The status,
// with sotto_last_error() set on an error.
sotto_status load_config(const sotto_client_options& options, SottoClientConfig& config);

// A handle over `trainer` (set in `handle` beforehand); sets *out. The status, with sotto_last_error() set.
sotto_status finish_create(std::unique_ptr<sotto_client> handle, SottoClientConfig config,
                           std::shared_ptr<Trainer> trainer, sotto_client** out);

// Drops this thread's copy of the handle's ledger (sotto_client_destroy).
void forget_ledger_read(const sotto_client& handle);

}  // namespace sotto::client::c_api
