// Test support: what the integration tests need to run the real sotto-aggregator and sotto-client binaries —
// temporary directories, a throw-away PKI, child processes with their output in log files, polling with
// timeouts, small file and JSON-lines readers, TOML config writers with quick test defaults, and a raw TLS/TCP
// probe that speaks (or deliberately mangles) the Sotto wire format.
//
// Everything here is bounded in time: every wait takes a timeout, and a Process that is still running when it
// goes out of scope is killed (SIGKILL) and reaped, so a failing test never leaves processes behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/util/child_process.h"
#include "common/util/file.h"
#include "common/util/json_lines.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using util::Seconds;

// ---- directories and files ---------------------------------------------------------------------------------------

// A fresh directory /tmp/sotto-<tag>-XXXXXX, removed with everything in it when the TempDir goes away — unless the
// environment variable SOTTO_KEEP_TEST_DIRS is set (then its path is printed to stderr and it is kept).
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Whole file as a string (common/util/file.h).
using util::read_file;
// Creates parent directories; replaces the file.
void write_file(const fs::path& path, const std::string& text);
// One JSON value per complete, non-empty line (common/util/json_lines.h).
inline std::vector<nlohmann::json> read_jsonl(const fs::path& path) { return util::read_json_lines(path); }
// A JSON array of strings (e.g. a rounds.jsonl line's participants) as a set.
inline std::set<std::string> string_set(const nlohmann::json& array) {
  std::set<std::string> out;
  for (const auto& s : array) out.insert(s.get<std::string>());
  return out;
}

// ---- PKI ---------------------------------------------------------------------------------------------------------

// The files scripts/make-certs.sh writes into a directory.
struct Pki {
  fs::path dir;
  fs::path ca() const { return dir / "ca.pem"; }
  fs::path server_cert() const { return dir / "server.pem"; }
  fs::path server_key() const { return dir / "server.key"; }
  fs::path client_cert(int i) const { return dir / ("client-" + std::to_string(i) + ".pem"); }
  fs::path client_key(int i) const { return dir / ("client-" + std::to_string(i) + ".key"); }
};

// Runs SOTTO_SOURCE_DIR/scripts/make-certs.sh DIR NUM_CLIENTS (CA, server cert for localhost/127.0.0.1, and
// client-1..N). Throws std::runtime_error when the script fails.
Pki make_pki(const fs::path& dir, int num_clients);

// ---- processes ---------------------------------------------------------------------------------------------------

// SOTTO_BIN_DIR "/" + name, e.g. bin_path("sotto-aggregator").
fs::path bin_path(const std::string& name);

// Child processes, polling with timeouts and the aggregator's port file: common/util/child_process.h.
using util::Process;
using util::wait_for_port;
using util::wait_until;

// The number a python3 program prints on its first line (the accountants' tests compute their references with
// python3-mpmath this way); throws std::runtime_error, naming the program, when python3 or the module does not
// answer.
double python3_number(const std::string& program);

// models/export_model.py run by Debian's /usr/bin/python3 with python3-torch: its standard output. Throws
// std::runtime_error with the command when it fails.
std::string run_model_script(const std::vector<std::string>& args);
// models/export_model.py's MODEL ("fashion_cnn", "fashion_mlp") as a TorchScript file in dir, scripted (or traced).
fs::path export_torchscript(const fs::path& dir, const std::string& model, bool traced = false);

// VmRSS from /proc/PID/status, in KiB (-1 when the process is gone).
long resident_kib(pid_t pid);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close). For an aggregator that must
// come back on the same port after a restart.
std::uint16_t pick_free_port();

// ---- configs -----------------------------------------------------------------------------------------------------

// An aggregator's TOML config with quick test defaults. Keys map one-to-one to aggregator_config.cc.
struct AggregatorOptions {
  fs::path state_dir;
  Pki pki;  // server.cert_file / key_file / ca_file
  std::uint16_t port = 0;
  double handshake_timeout_s = 2;
  double hello_timeout_s = 2;
  double linger_s = 1;
  std::string auth_mode = "mtls_or_token";
  std::map<std::string, std::string> client_tokens;  // client id -> token
  std::uint64_t total_rounds = 2;
  std::uint32_t cohort_target = 3;
  std::uint32_t cohort_min = 2;
  double checkin_window_s = 30;
  double training_deadline_s = 60;
  double retry_delay_s = 0.5;
  bool evaluate = false;
  std::size_t eval_max_examples = 500;
  bool keep_round_models = true;
  std::string log_level = "info";
  std::string server_toml;  // more [server] keys, one per line
  std::string rounds_toml;  // more [rounds] keys, one per line
  std::string evaluation_toml;  // more [evaluation] keys, one per line
  std::string extra_toml;   // appended verbatim; start it with a [table] header
};
std::string aggregator_toml(const AggregatorOptions& options);
// Options for `rounds` rounds of exactly `clients` clients of `pki`, the state in <dir>/aggregator.
AggregatorOptions fixed_cohort_options(const fs::path& dir, const Pki& pki, std::uint64_t rounds,
                                       std::uint32_t clients);
fs::path write_aggregator_config(const fs::path& file, const AggregatorOptions& options);

// A sotto-client's TOML config with quick test defaults. Set cert_file + key_file (mutual TLS) or token.
struct ClientOptions {
  std::string id;
  std::uint16_t port = 0;
  std::string server_name = "localhost";
  fs::path ca_file;
  fs::path cert_file, key_file;
  std::string token;
  std::uint32_t num_shards = 3;
  std::uint32_t shard_index = 0;
  std::size_t max_examples = 300;
  double connect_timeout_s = 5;
  double backoff_initial_s = 0.1;
  double backoff_max_s = 0.5;
  double give_up_after_s = 30;  // 0 = keep retrying forever
  fs::path state_dir;           // empty = none; sealed under <state_dir>.key, made by write_client_config
  bool save_local_models = true;
  // [consent] grant: what the config grants for the person (empty: no grant; the state store's record decides).
  std::vector<std::string> consent_grant{"training", "analytics"};
  std::string log_level = "info";
  std::uint32_t max_rounds = 0;  // client.max_rounds (0: stay until training is finished)
  std::string extra_toml;  // appended verbatim; start it with a [table] header
};
std::string client_toml(const ClientOptions& options);
// Client i (1-based) of `pki` with its certificate (mutual TLS), talking to the aggregator on `port`.
ClientOptions mtls_client_options(const Pki& pki, int i, std::uint16_t port);
// Writes client_toml(options), and a new state key <state_dir>.key when there is a state_dir and none yet.
fs::path write_client_config(const fs::path& file, const ClientOptions& options);
fs::path state_key_file(const fs::path& state_dir);
// A client's ledger as `sotto-client ledger --json` prints it (the client must have exited: it locks its state).
std::vector<nlohmann::json> read_ledger(const fs::path& state_dir);

// Starts bin/sotto-aggregator or bin/sotto-client with --config, logging to <log_file>.
std::unique_ptr<Process> start_aggregator(const fs::path& config, const fs::path& log_file);
std::unique_ptr<Process> start_client(const std::string& name, const fs::path& config, const fs::path& log_file);
// Runs bin/<binary> with `args` to completion (at most 60 s; else std::runtime_error with its log): the process,
// with its exit code, and its output in `log_file`.
std::unique_ptr<Process> run_to_exit(const std::string& binary, const std::vector<std::string>& args,
                                     const fs::path& log_file);
// Clients 1..n of `pki` over mutual TLS to `port`, client i on shard i - 1 of n with at most max_examples
// examples; their configs and logs in `dir`.
std::vector<std::unique_ptr<Process>> start_mtls_clients(const Pki& pki, int n, std::uint16_t port,
                                                         const fs::path& dir, std::size_t max_examples);
// The port of the aggregator's [http] endpoint, from <state_dir>/http_port once it is written (0 if it never is).
std::uint16_t wait_for_http_port(const fs::path& state_dir, Seconds timeout = 10s);

// ---- raw connections ---------------------------------------------------------------------------------------------

// What a raw read saw.
struct ReadOutcome {
  enum class Kind {
    kEnvelope,  // a complete frame that parsed as an Envelope (envelope holds it)
    kBadFrame,  // a complete frame that did not parse, or a length above max_frame_bytes (detail says which)
    kClosed,    // the connection ended (EOF, reset, TLS alert...) before a complete frame; detail says how
    kTimeout,   // nothing complete within the timeout
  };
  Kind kind = Kind::kTimeout;
  v1::Envelope envelope;
  std::string detail;

  bool is_error(v1::ErrorCode code) const {
    return kind == Kind::kEnvelope && envelope.has_error() && envelope.error().code() == code;
  }
  std::string describe() const;
};

struct ProbeOptions {
  std::uint16_t port = 0;
  bool tls = true;                        // false: plain TCP, no handshake
  bool tls12_only = false;                // net::make_tls12_only_client_context instead of TLS 1.3
  fs::path ca_file;                       // server CA to trust (TLS only)
  fs::path cert_file, key_file;           // client certificate (optional)
  std::string server_name = "localhost";  // checked against the server certificate; empty = not checked
  std::string source_address;             // bind to this loopback address (e.g. "127.0.0.2") before connecting
};

// One synchronous connection to 127.0.0.1 for tests: connect, optionally handshake, write raw bytes or frames,
// read frames — every step with a timeout. Not thread-safe; use from one thread.
class Probe {
 public:
  // Connects (TCP only); throws std::runtime_error when the connection is refused or times out.
  explicit Probe(const ProbeOptions& options, Seconds timeout = 10s);
  ~Probe();
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // TLS handshake as a client. Empty string on success, else the error message (also on timeout).
  std::string handshake(Seconds timeout = 10s);
  // Writes bytes as they are (through TLS when handshaken). False when the write fails or times out.
  bool write_raw(const std::string& bytes, Seconds timeout = 10s);
  // Encodes (stamping net::kProtocolVersion) and writes one frame.
  bool write_envelope(const v1::Envelope& envelope, Seconds timeout = 10s);
  // Reads one frame (4-byte big-endian length, then the payload); lengths above max_frame_bytes are a kBadFrame.
  ReadOutcome read(Seconds timeout = 10s, std::size_t max_frame_bytes = 64u << 20);
  // Reads frames until the connection ends or the timeout passes; the last outcome is kClosed or kTimeout (or a
  // kBadFrame, after which nothing more is read).
  std::vector<ReadOutcome> read_until_closed(Seconds timeout = 10s);
  // Reads and keeps (in pending_bytes) whatever arrives until the peer closes the connection (true) or the timeout
  // passes (false).
  bool wait_closed(Seconds timeout = 10s);
  // Bytes received but not yet consumed by read() (e.g. a TLS alert a plain TCP probe received).
  const std::string& pending_bytes() const;
  // Half-closes the TCP connection (FIN; no TLS close_notify).
  void shutdown_send();
  // Closes the socket at once.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A Hello envelope (protocol version set when written).
v1::Envelope hello_envelope(const std::string& client_id, const std::string& token = "");
// A frame around arbitrary payload bytes: 4-byte big-endian length, then the payload (no version stamping).
std::string frame_of_payload(const std::string& payload);

// ---- models ------------------------------------------------------------------------------------------------------

// True when both files' models have the same layout and identical bytes (the round counters are not compared).
bool same_model_bytes(const fs::path& a, const fs::path& b);

}  // namespace sotto::test
