// ClientConfig: how a Sotto client reaches and authenticates to its aggregator, how patient it is, and where it
// keeps its on-device state. SottoClientConfig adds what the sotto-client binary needs to train on a shard of
// Fashion-MNIST. Both load from TOML with every key validated (README.md documents them).
#pragma once

#include "client/consent.h"
#include "common/ml/model_spec.h"
#include "common/model/personal_tensors.h"
#include "common/round/device_privacy.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace sotto::config {
class TomlReader;
}  // namespace sotto::config

namespace sotto::client {

// [limits] and training.threads: what taking part may cost the device, as the app caps it (0 = no cap).
struct DeviceLimits {
  int training_threads = 0;  // threads a round's training may use (0: the trainer's own default)
  // From the task's arrival: once a round has taken longer, training stops at its next batch and, until its update
  // has left, the device sends nothing more and leaves the round (after, it answers the unmasking the sum needs).
  std::chrono::milliseconds round_wall_time{0};
  // The update buffer: a round whose model (and so its update) is larger is declined before its model is received.
  std::uint64_t max_update_bytes = 0;
  // Bytes sent and received in any 24 hours: at the cap the device waits instead of checking in, and it declines a
  // round whose model, received and sent back, would pass it.
  std::uint64_t bytes_per_day = 0;
};

struct ClientConfig {
  std::string client_id;  // with mutual TLS the certificate's CN is the identity the aggregator uses
  std::string host = "127.0.0.1";
  std::uint16_t port = 8443;
  std::string server_name = "localhost";  // must match the aggregator certificate's name
  std::filesystem::path ca_file;
  std::filesystem::path cert_file, key_file;  // client certificate for mutual TLS (optional)
  std::string auth_token;                     // bearer token (optional)
  std::size_t max_frame_bytes = 8u << 20;
  std::size_t chunk_bytes = 1u << 20;
  std::size_t max_model_bytes = std::size_t{4} << 30;
  std::chrono::milliseconds connect_timeout{10000};  // TCP connect + TLS handshake + admission reply
  std::chrono::milliseconds io_timeout{60000};       // between frames of a model being streamed
  std::chrono::milliseconds wait_timeout{3600000};   // for a task after admission, and for the round's result
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds give_up_after{0};  // 0 = keep retrying forever
  std::chrono::milliseconds eligibility_poll{5000};  // how often an ineligible device asks again (Client::set_eligibility)
  std::filesystem::path state_dir;             // the sealed state store, the ledger and saved models; empty = keep nothing
  // The 256-bit key that seals state_dir's files (client/state_store.h); required with state_dir. In an app it comes
  // from the OS keystore.
  std::optional<std::array<std::uint8_t, 32>> state_key;
  // The state store's generation the app kept after its latest change (Client::state_generation()); a state
  // directory older than this is refused. 0: none kept.
  std::uint64_t state_min_generation = 0;
  bool save_local_models = false;              // write state_dir/local-round-<r>.sotto after training
  // [audit] sent_frames_file: appends every frame this client writes to the TLS stream, exactly as sent before
  // encryption, so an auditor (or a test) sees every byte that leaves the device. Off by default: the file holds
  // the updates in the clear.
  std::filesystem::path audit_sent_frames_file;
  // Leave after taking part in this many rounds: the task received, then the round completed, was abandoned or
  // was lost mid-round (0 = stay until training is finished).
  std::uint64_t max_rounds = 0;
  // Testing and simulation only: the process exits at once (status 97) right after this step — "task" (the task
  // and model received, before training), or sending a secure-aggregation step's message ("advertise",
  // "share_keys", "masked_input") — so that tests and sotto-sim can drop a client at an exact protocol step.
  std::string vanish_after;
  // Testing only, to play a malicious client against a real aggregator: report this many examples instead of the
  // true count (0 = the truth), and multiply the plain update by this after the participant has clipped it.
  std::uint64_t claim_examples = 0;
  double scale_update = 1.0;
  // A SecAgg+ insider: corrupts the share ciphertexts it sends to this many neighbours (lowest indices first).
  std::uint32_t garble_shares = 0;
  // [privacy]: the floor this device holds every round's plan to, and its own budget (round/device_privacy.h).
  round::DevicePrivacy privacy;
  // [personalization] personal: tensors this device keeps whatever the aggregator's plan says (only more than the
  // plan's, never fewer: a round that would federate one of them is refused).
  model::PersonalTensors personal;
  // [evaluation] report_local: send the trainer's held-out accuracies (global and personal model) with the update,
  // in the clear, in rounds without DP noise. The device's decision, not the plan's. report_local = "secure_sum":
  // only as a one-hot in a secure round's accuracy histogram, which true allows too.
  bool report_local_evaluation = false;
  bool report_local_in_secure_sum = false;
  DeviceLimits limits;
};

enum class Partitioning { kIid, kDirichlet };

struct SottoClientConfig {
  ClientConfig client;
  std::filesystem::path data_dir = "/usr/share/datasets/fashion-mnist";
  std::uint32_t shard_index = 0;  // 0-based
  std::uint32_t num_shards = 1;
  Partitioning partition = Partitioning::kIid;
  double dirichlet_alpha = 0.5;
  std::uint64_t partition_seed = 42;
  std::size_t max_examples = 0;  // cap on the shard's size (0 = whole shard), for quick tests
  // [evaluation] local_fraction: the share of the shard held out as this device's own test split (0: none).
  double local_fraction = 0;
  // This device's examples as training-set indices, one per line, in training order; replaces the shard keys.
  std::filesystem::path indices_file;
  ml::ModelSpec model;  // [model] architecture or torchscript: the model this device trains
  std::string log_level = "info";
  // [state]: the key file that seals state.dir (client.state_key is read from it), and where the store's latest
  // generation is kept beside it (default: <key_file>.generation).
  std::filesystem::path state_key_file;
  std::filesystem::path state_generation_file;
  // [consent] grant: consent the operator records for the person at start-up (demos, simulations, a fleet whose
  // owner agreed); absent: the state store's record decides, and without one the client does not start.
  std::optional<ConsentScope> consent_grant;
};

// The same from a parsed config (what the config fuzzer drives). Throws sotto::Error naming the key.
SottoClientConfig read_sotto_client_config(config::TomlReader& reader);
// Throws sotto::Error naming the file and key for any problem.
SottoClientConfig load_sotto_client_config(const std::filesystem::path& path);

}  // namespace sotto::client
