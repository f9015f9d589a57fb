/* sotto_client.h: the C API of Sotto's client library (libsotto_client.so).
 *
 * An app embeds a Sotto client to take part in federated training: its device trains the model on data that never
 * leaves it, and sends only the update, clipped, noised when the round asks for it, masked for secure aggregation,
 * over TLS 1.3. The library enforces the person's consent (nothing reaches the network before they opt in; opting
 * out cuts the connection before sotto_client_set_consent returns), keeps its state sealed with AES-256-GCM under
 * a key the app supplies, and keeps a ledger of every contribution that the app can show the person.
 *
 * Conventions: every function returns a sotto_status (SOTTO_OK is 0) unless it says otherwise; on an error,
 * sotto_last_error() gives a message saying what was wrong and what to do. Handles are opaque. Strings are UTF-8
 * and NUL-terminated; those the library returns stay valid until the next call on the same handle from the same
 * thread, unless a function says otherwise. Callbacks get the app's user pointer back and run on the thread that
 * called sotto_client_run(). No C++ types cross this header.
 */
#ifndef SOTTO_CLIENT_H
#define SOTTO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SOTTO_API __attribute__((visibility("default")))
#else
#define SOTTO_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header's API; sotto_api_version() gives the library's. An app built against version 2 that may
 * load a version-1 library checks sotto_api_version() >= 2 before reading sotto_training_plan.threads (the
 * version-2 functions it calls would not resolve there). */
#define SOTTO_CLIENT_API_VERSION 2

typedef enum sotto_status {
  SOTTO_OK = 0,
  SOTTO_ERROR_INVALID_ARGUMENT = 1, /* a null pointer, a bad value, an index out of range */
  SOTTO_ERROR_CONFIG = 2,           /* the config file, a value in it, a certificate */
  SOTTO_ERROR_STATE = 3,            /* the state directory: a wrong key, a tampered or rolled-back file, in use */
  SOTTO_ERROR_NO_CONSENT = 4,       /* the work needs consent the person has not granted */
  SOTTO_ERROR_NETWORK = 5,          /* the aggregator refused this client or could not be reached in time */
  SOTTO_ERROR_TRAINING = 6,         /* the app's training callback failed */
  SOTTO_ERROR_INTERNAL = 7
} sotto_status;

/* The message of the last error on the calling thread ("" when there was none). Valid until the next call that
 * fails on this thread. */
SOTTO_API const char* sotto_last_error(void);
/* "SOTTO_OK", "SOTTO_ERROR_CONFIG", ... (a static string). */
SOTTO_API const char* sotto_status_name(sotto_status status);
/* SOTTO_CLIENT_API_VERSION of the library that is loaded. */
SOTTO_API int sotto_api_version(void);

/* ---- the client ------------------------------------------------------------------------------------------------ */

typedef struct sotto_client sotto_client;

typedef struct sotto_client_options {
  /* A sotto-client TOML config (README.md, "sotto-client configuration"): [client], [server], [auth],
   * [connection], [state], [privacy]; [data] keys are ignored (the app trains on its own data). */
  const char* config_file;
  /* The 32-byte key that seals state.dir; required when the config has one. Copied: the app may wipe its copy once
   * sotto_client_create returns. In a real app it comes from the OS keystore. */
  const uint8_t* state_key;
  /* The state generation the app kept (sotto_client_state_generation) after its latest change; 0 = none. A state
   * directory older than this is refused. */
  uint64_t state_min_generation;
} sotto_client_options;

/* One float32 tensor of the model, in row-major order; the app trains it in place. */
typedef struct sotto_tensor {
  const char* name;      /* e.g. "fc.weight" */
  float* data;
  size_t count;          /* the number of floats */
  const int64_t* shape;
  size_t rank;
} sotto_tensor;

/* What the aggregator asks of this round's training. */
typedef struct sotto_training_plan {
  uint32_t epochs;
  uint32_t batch_size;
  double learning_rate;
  double momentum;
  double weight_decay;
  uint64_t seed; /* for the app's shuffling */
  /* Personalization, as the aggregator's [personalization] asks (0 when off). The tensors it names personal
   * (sotto_tensor_is_personal) are the device's own: the library hands them over with the others, keeps what the
   * app trained between rounds (sealed, in state.dir) and never sends them. head_epochs (FedRep): train the
   * personal tensors alone that many epochs first, then the others alone for `epochs`. finetune_epochs and
   * ditto_lambda ask the app for its own personal model, which it keeps itself: a copy of the received model
   * fine-tuned that many epochs, or Ditto's model trained with (ditto_lambda / 2) * ||v - received||^2 added. */
  uint32_t head_epochs;
  uint32_t finetune_epochs;
  double ditto_lambda;
  const void* personalization; /* the library's; read it through sotto_tensor_is_personal */
  /* The app's cap on the threads its training may use (the config's training.threads, default 1, or
   * sotto_client_set_limits'). The library cannot see the app's threads: honouring it is the callback's part.
   * (API version 2.) */
  uint32_t threads;
} sotto_training_plan;

/* 1 when the plan keeps the tensor named `tensor_name` on the device, else 0 (also for null arguments). */
SOTTO_API int sotto_tensor_is_personal(const sotto_training_plan* plan, const char* tensor_name);

typedef struct sotto_fit_result {
  uint64_t num_examples; /* examples trained on: the round's FedAvg weight; must be at least 1 */
  double mean_loss;
  double accuracy;
  /* Optional: the app's own measure on examples it held out from training (0 = none). The accuracy of the model
   * as received, and of the model the person uses (its personal model, else the one it trained), each in [0, 1].
   * Sent with the update only where the config allows it (evaluation.report_local) and the round adds no noise;
   * in a secure round that asks for accuracy histograms, only as their bins inside the masked input. */
  uint64_t held_out_examples;
  double held_out_global_accuracy;
  double held_out_personal_accuracy;
} sotto_fit_result;

/* The app's training: `tensors` hold the global model's float32 tensors (other tensors stay as the aggregator sent
 * them); train them in place on the device's own data and fill *result. Call sotto_client_next_batch() before each
 * batch and run it only when it returns 1; on 0 (sotto_client_cancel, sotto_client_stop, an opt-out, or the device
 * became ineligible) return at once: the round is abandoned and nothing of it is sent. Return SOTTO_OK, or
 * SOTTO_ERROR_TRAINING when the training itself failed (sotto_set_training_error gives the reason). */
typedef sotto_status (*sotto_train_fn)(void* user, sotto_tensor* tensors, size_t count,
                                       const sotto_training_plan* plan, sotto_fit_result* result);

/* Creates a client from the options and the app's training. It does nothing on the network until
 * sotto_client_run(), and then only with the person's consent. *out is set on success; free it with
 * sotto_client_destroy. */
SOTTO_API sotto_status sotto_client_create(const sotto_client_options* options, sotto_train_fn train,
                                           void* train_user, sotto_client** out);
/* Frees the client (stop and let sotto_client_run return first). Null is ignored. */
SOTTO_API void sotto_client_destroy(sotto_client* client);

/* The app's model as it starts (its initial weights; float32 tensors, copied). When the plan keeps tensors on the
 * device (sotto_tensor_is_personal) that it has not trained yet — its first such round — the library hands them to
 * sotto_train_fn from here, beside the global model's. Call it before sotto_client_run; without it such a round
 * fails with SOTTO_ERROR_TRAINING saying so. */
SOTTO_API sotto_status sotto_client_set_initial_model(sotto_client* client, const sotto_tensor* tensors, size_t count);

/* From inside sotto_train_fn: the reason the training failed, for the logs and sotto_last_error. */
SOTTO_API void sotto_set_training_error(const char* message);

/* ---- or: the library trains the model ------------------------------------------------------------------------ */

/* The app's example `index` (0, 1, 2, ... as the library asks): its 28x28 greyscale image as pixel_count (784)
 * bytes, 0-255, row after row, written to `pixels`, and its class to *label. Return 1 when written, 0 when there is
 * no example `index` (the end of the app's data), anything else on an error (sotto_client_run then returns
 * SOTTO_ERROR_TRAINING). Asked on the training thread at the start of each round's training, for all the examples
 * (at most 1,000,000); the library holds them in memory for that training only and writes none of them to a file.
 * With no examples yet, the round is left and the device comes back for the next. */
typedef int (*sotto_example_fn)(void* user, uint64_t index, uint8_t* pixels, size_t pixel_count, uint32_t* label);

/* Creates a client whose library trains the config's model itself ([model]: model.torchscript FILE, a classifier
 * authored in PyTorch as models/export_model.py saves it, or a built-in model.architecture) on the app's examples,
 * read through `examples` each round. It holds out evaluation.local_fraction of them to measure the models, and
 * does the plan's personalization as sotto-client does. LibTorch is not linked: it is loaded from
 * libsotto_torch_runtime.so at the first round's training (sotto_set_torch_runtime says where it is); until then
 * the client stays small. Otherwise as sotto_client_create. (API version 2.) */
SOTTO_API sotto_status sotto_client_create_model_trainer(const sotto_client_options* options,
                                                         sotto_example_fn examples, void* examples_user,
                                                         sotto_client** out);

/* Runs the person's model on one 28x28 image (pixel_count = 784 bytes, 0-255), writing `classes` logits: its
 * personal model when the plan adapts one (fine-tuning, Ditto), else the model this device trained in its latest
 * round since the client was created, else the model's initial weights with the personal tensors the device keeps
 * (after a restart, until its next round: the initial body with its own head). After an opt-out, the initial model.
 * Thread-safe; the first call loads LibTorch. SOTTO_ERROR_INVALID_ARGUMENT for a client the app trains itself, or
 * a `classes` that is not the model's (the message says how many). (API version 2.) */
SOTTO_API sotto_status sotto_client_predict(sotto_client* client, const uint8_t* pixels, size_t pixel_count,
                                            float* logits, size_t classes);

/* Where libsotto_torch_runtime.so, the optional LibTorch module, is (null or "": the default search: the
 * SOTTO_TORCH_RUNTIME environment variable, beside the executable, then lib/sotto/ beside libsotto_client.so, where
 * `cmake --install` puts it). For the process; set it before the first training or prediction. (API version 2.) */
SOTTO_API sotto_status sotto_set_torch_runtime(const char* path);

/* ---- consent --------------------------------------------------------------------------------------------------- */

#define SOTTO_CONSENT_TRAINING 1u  /* the device trains on the person's data and shares the protected update */
#define SOTTO_CONSENT_ANALYTICS 2u /* the device adds its values to secure sums */

/* The person's choice, persisted (sealed, in state.dir) before it returns; thread-safe. granted = 1 records an
 * opt-in for `scope` (a combination of SOTTO_CONSENT_*). granted = 0 records an opt-out: the connection is cut
 * before this returns (not one more byte is sent), the round in flight is abandoned, sotto_client_run returns,
 * and saved models and pending updates are deleted; delete_ledger = 1 deletes the ledger too. */
SOTTO_API sotto_status sotto_client_set_consent(sotto_client* client, int granted, unsigned scope, int delete_ledger);
/* The record: granted (0/1), its scope, and when the person last decided (Unix seconds; 0 = never). Any pointer
 * may be null. */
SOTTO_API sotto_status sotto_client_get_consent(sotto_client* client, int* granted, unsigned* scope,
                                                double* unix_time);

/* ---- running --------------------------------------------------------------------------------------------------- */

typedef enum sotto_event_kind {
  SOTTO_EVENT_AWAITING_CONSENT = 0,
  SOTTO_EVENT_CONSENT_REVOKED = 1,
  SOTTO_EVENT_CONNECTING = 2,
  SOTTO_EVENT_CONNECT_FAILED = 3, /* value: the backoff in milliseconds */
  SOTTO_EVENT_ADMITTED = 4,
  SOTTO_EVENT_RETRY_LATER = 5,
  SOTTO_EVENT_TASK_RECEIVED = 6,
  SOTTO_EVENT_TRAINED = 7,        /* value: the mean train loss */
  SOTTO_EVENT_UPLOADED = 8,       /* value: bytes sent */
  SOTTO_EVENT_ROUND_COMPLETED = 9,
  SOTTO_EVENT_ROUND_ABANDONED = 10,
  SOTTO_EVENT_REJECTED = 11,
  SOTTO_EVENT_FINISHED = 12,
  SOTTO_EVENT_INELIGIBLE = 13     /* message: why the eligibility check says no */
} sotto_event_kind;

typedef struct sotto_event {
  sotto_event_kind kind;
  uint64_t round;
  const char* message; /* valid during the callback */
  double value;
} sotto_event;

typedef void (*sotto_event_fn)(void* user, const sotto_event* event);

/* Progress callback (null: none). Set it before sotto_client_run. */
SOTTO_API sotto_status sotto_client_on_event(sotto_client* client, sotto_event_fn on_event, void* user);

typedef struct sotto_run_summary {
  int finished;        /* the aggregator said training is finished */
  int consent_revoked; /* returned because the person opted out */
  uint64_t rounds_contributed;
} sotto_run_summary;

/* Takes part in rounds until training is finished, sotto_client_stop, or an opt-out; blocks. Without consent it
 * waits (SOTTO_EVENT_AWAITING_CONSENT) and sends nothing. `summary` may be null. Errors: SOTTO_ERROR_NETWORK
 * (authentication refused, an unsupported protocol version, connection.give_up_after_s), SOTTO_ERROR_TRAINING. */
SOTTO_API sotto_status sotto_client_run(sotto_client* client, sotto_run_summary* summary);
/* From any thread: sotto_client_run returns soon after, and a training run stops at its next batch. */
SOTTO_API sotto_status sotto_client_stop(sotto_client* client);
/* From any thread: the training run in progress stops at its next batch (after this returns,
 * sotto_client_next_batch returns 0 for it) and its round is abandoned; the client goes on to later rounds. */
SOTTO_API sotto_status sotto_client_cancel(sotto_client* client);
/* While the training callback runs, before each batch (from its thread or another of the app's): 1 to run it, 0 to
 * stop (see sotto_train_fn). */
SOTTO_API int sotto_client_next_batch(sotto_client* client);
/* Non-zero once the training should stop (sotto_client_stop, sotto_client_cancel, an opt-out, ineligible). */
SOTTO_API int sotto_client_should_stop(sotto_client* client);

/* The app's eligibility check: return 1 when the device may take part now (charging, idle, unmetered network, as
 * the app decides); else 0, with a short reason written to reason[0 .. reason_size). */
typedef int (*sotto_eligibility_fn)(void* user, char* reason, size_t reason_size);
/* Asked before every check-in and every training batch (null: always eligible); set it before sotto_client_run.
 * While ineligible the client sends nothing (SOTTO_EVENT_INELIGIBLE), asks again every
 * connection.eligibility_poll_s, or at once after sotto_client_eligibility_changed. */
SOTTO_API sotto_status sotto_client_set_eligibility(sotto_client* client, sotto_eligibility_fn check, void* user);
SOTTO_API sotto_status sotto_client_eligibility_changed(sotto_client* client);

/* The app's caps on what taking part may cost the device, replacing the config's [limits] and training.threads;
 * 0 = no cap. Set them before sotto_client_run (SOTTO_ERROR_INVALID_ARGUMENT after). training_threads: passed to
 * the training callback as plan->threads (0 keeps the config's training.threads, default 1). round_wall_time_s: once
 * a round has taken longer since its task arrived, sotto_client_next_batch returns 0 and, until the update has left,
 * nothing more is sent and the round is left (the ledger says why).
 * max_update_bytes: the update buffer; a round whose model (and so its update) is larger is declined before the
 * model is received. bytes_per_day: bytes sent and received in any 24 hours; at the cap the client waits
 * (SOTTO_EVENT_INELIGIBLE says why) and it declines a round whose model, received and sent back, would pass it.
 * A declined round is recorded in the ledger as "abandoned" (the first of a run of declines for a cap) and the
 * client asks again after connection.eligibility_poll_s, twice as long after each further decline, up to an hour.
 * (API version 2.) */
SOTTO_API sotto_status sotto_client_set_limits(sotto_client* client, unsigned training_threads,
                                               double round_wall_time_s, uint64_t max_update_bytes,
                                               uint64_t bytes_per_day);

/* The state store's generation after its latest change (0 without state.dir). Keep it beside the state key and
 * give it back as sotto_client_options.state_min_generation. */
SOTTO_API uint64_t sotto_client_state_generation(sotto_client* client);

/* ---- the ledger ------------------------------------------------------------------------------------------------ */

typedef struct sotto_ledger_entry {
  double unix_time;
  uint64_t round;
  const char* outcome; /* "sending", "completed", "abandoned", "rejected" */
  uint64_t examples;
  uint64_t bytes_sent;
  uint64_t bytes_received;
  double train_loss;
  double update_l2_norm;   /* of what was sent */
  int secure_aggregation;  /* 1: the aggregator saw only the sum */
  double clip_norm;
  int has_privacy;         /* 1: the fields below are set */
  const char* privacy_mode; /* "distributed", "central", "local" */
  double noise_multiplier;  /* what this device's own noise share implies */
  double epsilon;           /* this device's own, after the contribution */
  double epsilon_stated;    /* the aggregator's */
} sotto_ledger_entry;

/* The number of entries in the ledger (0 without state.dir). Reads it afresh. */
SOTTO_API sotto_status sotto_client_ledger_size(sotto_client* client, size_t* count);
/* Entry `index` (0 = oldest) of the ledger as the latest sotto_client_ledger_size on this thread read it; its
 * strings stay valid until that thread calls sotto_client_ledger_size on this client again, or destroys it. */
SOTTO_API sotto_status sotto_client_ledger_entry(sotto_client* client, size_t index, sotto_ledger_entry* entry);
/* Why entry `index` ended as it did, for a round the device left ("cancelled by the app", a limit, ...; "" for
 * others), valid as sotto_client_ledger_entry's strings; null for an index out of range. (API version 2.) */
SOTTO_API const char* sotto_client_ledger_reason(sotto_client* client, size_t index);

#ifdef __cplusplus
}
#endif

#endif /* SOTTO_CLIENT_H */
