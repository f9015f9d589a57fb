// AggregatorConfig: everything sotto-aggregator reads from its TOML file, validated on load.
//
// load_aggregator_config() checks every key's type and range, refuses unknown keys, and says which key is wrong
// and what it may be. README.md documents each key; `sotto-aggregator --help` lists the command-line options.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "aggregator/authenticator.h"
#include "aggregator/connection_gate.h"
#include "aggregator/round_coordinator.h"
#include "aggregator/strategy_factory.h"
#include "common/ml/model_spec.h"

namespace sotto::config {
class TomlReader;
}  // namespace sotto::config

namespace sotto::aggregator {

struct AggregatorConfig {
  // [server]
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 8443;  // 0 = any free port (written to <state_dir>/port)
  std::filesystem::path cert_file, key_file, ca_file;
  std::filesystem::path crl_file;  // optional: revoked client certificates (reloaded on SIGHUP)
  std::size_t max_frame_bytes = 8u << 20;
  // Bytes of updates reassembled at once (upload_gate.h); 0: no limit.
  std::size_t max_upload_assembly_bytes = std::size_t{32} << 20;
  std::size_t max_hello_bytes = 4096;  // the frame limit before a connection has authenticated
  ConnectionLimits connection_limits;
  std::size_t chunk_bytes = 1u << 20;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds hello_timeout{10000};
  std::chrono::milliseconds linger{3000};  // after the last round, keep telling late clients it is over
  // [auth]
  AuthMode auth_mode = AuthMode::kMutualTlsOrToken;
  std::map<std::string, std::string> client_tokens;  // client id -> its bearer token
  // [rounds] and [plan]
  CoordinatorOptions rounds;
  // [model]
  ml::ModelSpec model;  // [model] architecture or torchscript
  std::uint64_t init_seed = 1;
  // [strategy]
  StrategyOptions strategy;
  // [evaluation]
  bool evaluate = true;
  std::filesystem::path eval_data_dir = "/usr/share/datasets/fashion-mnist";
  std::size_t eval_max_examples = 0;
  // [state]
  std::filesystem::path state_dir = "state";
  bool keep_round_models = false;
  // [log]
  std::string log_level = "info";
  // [http]: the operators' endpoint (http_endpoint.h): /metrics, /healthz, /readyz
  struct Http {
    bool enabled = false;
    std::string listen_address = "127.0.0.1";
    std::uint16_t port = 9464;  // 0 = any free port (written to <state_dir>/http_port)
    std::string bearer_token;   // when set, every request must carry it
    bool tls = false;           // HTTPS with the server's certificate and key ([server] cert_file, key_file)
  } http;
};

// The same from a parsed config (what the config fuzzer drives). Throws sotto::Error naming the key.
AggregatorConfig read_aggregator_config(config::TomlReader& reader);
// Throws sotto::Error naming the file and key for any problem.
AggregatorConfig load_aggregator_config(const std::filesystem::path& path);

}  // namespace sotto::aggregator
