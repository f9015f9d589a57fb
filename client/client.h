// Client: the embeddable participant. An app constructs it with a ClientConfig and a Trainer and calls run(); the
// client connects to the aggregator over TLS 1.3, checks in, receives the global model and training plan, trains
// through the Trainer on data that never leaves the device, and sends back only the update (local minus global).
// Between rounds it reconnects; when the aggregator is down or restarting it retries with exponential backoff
// (with jitter); it returns when the aggregator says training is finished or when stop() is called.
//
// This class is the session loop: check in, take the task, reconnect with backoff (backoff.h). Its transport is
// AggregatorLink (aggregator_link.h: TLS, frames, timeouts); RoundDriver (round_driver.h) carries out a round.
// What happens within a round — the plan's seed, the update and its checks, clipping and quantization, the SecAgg+
// steps, the task's deadline — is round::Participant's (common/round/participant.h), which the driver feeds with
// the aggregator's messages.
//
// Consent: run() does nothing on the network until the app records the person's opt-in with set_consent(true,
// scope), and a training client needs the "training" scope, an analytics one "analytics". Revoking stops at once:
// the connection is cut before set_consent returns (not one byte more is sent), the round in flight is abandoned,
// run() returns, and the device's pending updates and saved models are deleted (and the ledger too, if the app
// asks). With state_dir, the record is sealed in the state store (state_store.h) and survives restarts.
//
// Progress reaches the app through an event callback. Every contribution is recorded in the on-device ledger
// (ledger.h) when state_dir is set. No Boost, OpenSSL or LibTorch types in this header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client_config.h"
#include "client/consent.h"
#include "client/trainer.h"
#include "client/training_control.h"

namespace sotto::client {

enum class ClientEventKind {
  kAwaitingConsent,  // consent does not cover this work: nothing is sent until set_consent grants it
  kConsentRevoked,   // set_consent(false): the round in flight was abandoned; run() returns
  kConnecting,
  kConnectFailed,   // message says why; the client backs off and retries
  kAdmitted,        // round_id
  kRetryLater,      // message: the aggregator's reason
  kTaskReceived,    // round_id
  kTrained,         // round_id, value = mean train loss
  kUploaded,        // round_id, value = bytes sent
  kRoundCompleted,  // round_id
  kRoundAbandoned,  // round_id
  kRejected,        // message: the aggregator's error
  kFinished,
  kIneligible,       // message: why the app's eligibility check says no; nothing is sent until it says yes
};

struct ClientEvent {
  ClientEventKind kind;
  std::uint64_t round_id = 0;
  std::string message;
  double value = 0;
};

struct RunSummary {
  bool finished = false;  // the aggregator said training is finished (false: stopped)
  std::uint64_t rounds_contributed = 0;
  bool consent_revoked = false;  // run() returned because the person revoked consent
};


class Client {
 public:
  Client(ClientConfig config, std::shared_ptr<Trainer> trainer);
  // A client for federated analytics: it contributes this vector (integers mod 2^32) to the aggregator's secure
  // sums instead of training.
  Client(ClientConfig config, std::vector<std::uint32_t> contribution);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void on_event(std::function<void(const ClientEvent&)> callback);
  // Blocks until training is finished or stop() is called. Throws sotto::Error for what retrying cannot fix: an
  // unreadable certificate, an authentication failure, an unsupported protocol version, or give_up_after elapsed.
  RunSummary run();
  // Thread-safe; run() returns soon after, and a training run stops at its next batch.
  void stop();
  // Thread-safe: the training run in progress stops at its next batch (no batch starts after cancel() returns) and
  // its round is abandoned; the client goes on to later rounds. Nothing happens when no training runs.
  void cancel();

  // The app's caps (DeviceLimits, client_config.h), replacing the config's; before run(), else sotto::Error.
  void set_limits(const DeviceLimits& limits);

  // The app's eligibility check (charging, idle, unmetered network, ...): asked before every check-in and every
  // training batch; a reason means "not now". Set it before run(). While ineligible the client sends nothing and
  // asks again every connection.eligibility_poll, or at once after eligibility_changed().
  void set_eligibility(EligibilityCheck check);
  void eligibility_changed();

  // The person's choice; thread-safe, and persisted before it returns. Granting lets run() connect for work the
  // scope covers. Revoking (granted = false; scope is ignored) cuts the connection before it returns, abandons the
  // round, makes run() return, and deletes pending updates, saved local models and, with kDeleteLedger, the ledger.
  void set_consent(bool granted, ConsentScope scope = ConsentScope::kAll, OnRevoke on_revoke = OnRevoke::kKeepLedger);
  ConsentRecord consent() const;
  // The state store's generation after its latest change (0 without state_dir). Keep it beside the state key and
  // give it back as ClientConfig::state_min_generation: an older state directory put back is then refused.
  std::uint64_t state_generation() const;
  // What the device keeps for the person (personal_state.h): the personal model of local adaptation and the personal
  // tensors of its model, each empty when there is none. For running the person's own model; thread-safe.
  model::ModelParameters personal_model() const;
  model::ModelParameters personal_tensors() const;
  // The ledger (ledger.h) as JSON lines, one per contribution, oldest first ("" without state_dir).
  std::string ledger_json() const;
  // Called with each new generation, in increasing order, on the thread that changed the state, outside the state
  // store's lock and the consent lock: it may call state_generation(), consent(), even set_consent().
  void on_state_change(std::function<void(std::uint64_t)> callback);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sotto::client
