#include "tests/support/test_support.h"

#include "client/state_key.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/codec/model_file.h"
#include "common/net/frame.h"
#include "common/net/tls_context.h"

namespace sotto::test {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

// ---- directories and files ---------------------------------------------------------------------------------------

TempDir::TempDir(const std::string& tag) {
  std::string pattern = "/tmp/sotto-" + tag + "-XXXXXX";
  if (!::mkdtemp(pattern.data())) {
    throw std::runtime_error("mkdtemp(" + pattern + ") failed: " + std::strerror(errno));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  if (std::getenv("SOTTO_KEEP_TEST_DIRS")) {
    std::cerr << "SOTTO_KEEP_TEST_DIRS: keeping " << path_.string() << '\n';
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}


void write_file(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// ---- PKI ---------------------------------------------------------------------------------------------------------

Pki make_pki(const fs::path& dir, int num_clients) {
  const std::string command = "bash '" SOTTO_SOURCE_DIR "/scripts/make-certs.sh' '" + dir.string() + "' " +
                              std::to_string(num_clients) + " >/dev/null 2>&1";
  const int status = std::system(command.c_str());
  Pki pki{dir};
  if (status != 0 || !fs::exists(pki.ca()) || !fs::exists(pki.server_key()) ||
      (num_clients > 0 && !fs::exists(pki.client_key(num_clients)))) {
    throw std::runtime_error("failed to make a PKI: " + command);
  }
  return pki;
}

// ---- processes ---------------------------------------------------------------------------------------------------

fs::path bin_path(const std::string& name) { return fs::path(SOTTO_BIN_DIR) / name; }


namespace {

std::string shell_quoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

double python3_number(const std::string& program) {
  FILE* pipe = popen(("python3 -c " + shell_quoted(program)).c_str(), "r");
  char out[128] = {};
  const bool read = pipe != nullptr && std::fgets(out, sizeof out, pipe) != nullptr;
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  if (!read || status != 0) {
    throw std::runtime_error("python3 (with python3-mpmath, installed by scripts/install-deps.sh) did not answer: " +
                             program);
  }
  return std::stod(out);
}

std::string run_model_script(const std::vector<std::string>& args) {
  std::string command = "/usr/bin/python3 " + shell_quoted(std::string(SOTTO_SOURCE_DIR) + "/models/export_model.py");
  for (const auto& a : args) command += " " + shell_quoted(a);
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  char buffer[4096];
  while (pipe != nullptr) {
    const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe);
    if (n == 0) break;
    out.append(buffer, n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  if (status != 0) {
    throw std::runtime_error("python3-torch (installed by scripts/install-deps.sh) failed: " + command + "\n" + out);
  }
  return out;
}

fs::path export_torchscript(const fs::path& dir, const std::string& model, bool traced) {
  const fs::path file = dir / (model + (traced ? "_traced" : "") + ".pt");
  std::vector<std::string> args{"export", model, file.string()};
  if (traced) args.push_back("--trace");
  run_model_script(args);
  return file;
}

long resident_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::uint16_t pick_free_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// ---- configs -----------------------------------------------------------------------------------------------------

namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string quoted(const fs::path& p) { return quoted(p.string()); }

std::string number(double v) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << v;
  return out.str();
}

const char* boolean(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string aggregator_toml(const AggregatorOptions& o) {
  std::ostringstream t;
  t << "[server]\n"
    << "listen_address = \"127.0.0.1\"\n"
    << "port = " << o.port << '\n'
    << "cert_file = " << quoted(o.pki.server_cert()) << '\n'
    << "key_file = " << quoted(o.pki.server_key()) << '\n'
    << "ca_file = " << quoted(o.pki.ca()) << '\n'
    << "handshake_timeout_s = " << number(o.handshake_timeout_s) << '\n'
    << "hello_timeout_s = " << number(o.hello_timeout_s) << '\n'
    << "linger_s = " << number(o.linger_s) << '\n'
    << o.server_toml << (o.server_toml.empty() || o.server_toml.back() == '\n' ? "" : "\n")
    << "\n[auth]\n"
    << "mode = " << quoted(o.auth_mode) << '\n';
  if (!o.client_tokens.empty()) {
    t << "\n[auth.client_tokens]\n";
    for (const auto& [id, token] : o.client_tokens) t << quoted(id) << " = " << quoted(token) << '\n';
  }
  t << "\n[rounds]\n"
    << "total = " << o.total_rounds << '\n'
    << "cohort_target = " << o.cohort_target << '\n'
    << "cohort_min = " << o.cohort_min << '\n'
    << "checkin_window_s = " << number(o.checkin_window_s) << '\n'
    << "training_deadline_s = " << number(o.training_deadline_s) << '\n'
    << "retry_delay_s = " << number(o.retry_delay_s) << '\n'
    << o.rounds_toml << (o.rounds_toml.empty() || o.rounds_toml.back() == '\n' ? "" : "\n")
    << "\n[evaluation]\n"
    << "enabled = " << boolean(o.evaluate) << '\n'
    << "max_examples = " << o.eval_max_examples << '\n'
    << o.evaluation_toml << (o.evaluation_toml.empty() || o.evaluation_toml.back() == '\n' ? "" : "\n")
    << "\n[state]\n"
    << "dir = " << quoted(o.state_dir) << '\n'
    << "keep_round_models = " << boolean(o.keep_round_models) << '\n'
    << "\n[log]\n"
    << "level = " << quoted(o.log_level) << '\n';
  if (!o.extra_toml.empty()) t << '\n' << o.extra_toml << '\n';
  return t.str();
}

fs::path write_aggregator_config(const fs::path& file, const AggregatorOptions& options) {
  write_file(file, aggregator_toml(options));
  return file;
}

std::string client_toml(const ClientOptions& o) {
  std::ostringstream t;
  t << "[client]\n"
    << "id = " << quoted(o.id) << '\n';
  if (o.max_rounds > 0) t << "max_rounds = " << o.max_rounds << '\n';
  t
    << "\n[server]\n"
    << "host = \"127.0.0.1\"\n"
    << "port = " << o.port << '\n'
    << "server_name = " << quoted(o.server_name) << '\n'
    << "ca_file = " << quoted(o.ca_file) << '\n'
    << "\n[auth]\n";
  if (!o.cert_file.empty()) {
    t << "cert_file = " << quoted(o.cert_file) << '\n' << "key_file = " << quoted(o.key_file) << '\n';
  }
  if (!o.token.empty()) t << "token = " << quoted(o.token) << '\n';
  t << "\n[connection]\n"
    << "connect_timeout_s = " << number(o.connect_timeout_s) << '\n'
    << "backoff_initial_s = " << number(o.backoff_initial_s) << '\n'
    << "backoff_max_s = " << number(o.backoff_max_s) << '\n'
    << "give_up_after_s = " << number(o.give_up_after_s) << '\n'
    << "\n[data]\n"
    << "num_shards = " << o.num_shards << '\n'
    << "shard_index = " << o.shard_index << '\n'
    << "max_examples = " << o.max_examples << '\n';
  if (!o.state_dir.empty()) {
    t << "\n[state]\n"
      << "dir = " << quoted(o.state_dir) << '\n'
      << "save_local_models = " << boolean(o.save_local_models) << '\n'
      << "key_file = " << quoted(state_key_file(o.state_dir)) << '\n';
  }
  if (!o.consent_grant.empty()) {
    t << "\n[consent]\ngrant = [";
    for (std::size_t i = 0; i < o.consent_grant.size(); ++i) t << (i ? ", " : "") << quoted(o.consent_grant[i]);
    t << "]\n";
  }
  t << "\n[log]\n"
    << "level = " << quoted(o.log_level) << '\n';
  if (!o.extra_toml.empty()) t << '\n' << o.extra_toml << '\n';
  return t.str();
}

fs::path state_key_file(const fs::path& state_dir) {
  fs::path key = state_dir;
  key += ".key";
  return key;
}

std::unique_ptr<Process> run_to_exit(const std::string& binary, const std::vector<std::string>& args,
                                     const fs::path& log_file) {
  std::vector<std::string> argv{bin_path(binary).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = std::make_unique<Process>(binary, argv, log_file);
  if (!p->wait_for_exit(60s)) throw std::runtime_error(binary + " did not exit within 60 s: " + p->log_text());
  return p;
}

std::vector<nlohmann::json> read_ledger(const fs::path& state_dir) {
  const fs::path out = state_dir.parent_path() / (state_dir.filename().string() + "-ledger.jsonl");
  fs::remove(out);  // Process appends to its log
  const auto p = run_to_exit("sotto-client", {"ledger", "--json", "--state-dir", state_dir.string(), "--key-file",
                                              state_key_file(state_dir).string()}, out);
  if (p->exit_code() != 0) {
    throw std::runtime_error("sotto-client ledger on " + state_dir.string() + " failed: " + p->log_text());
  }
  return read_jsonl(out);
}

fs::path write_client_config(const fs::path& file, const ClientOptions& options) {
  write_file(file, client_toml(options));
  if (!options.state_dir.empty() && !fs::exists(state_key_file(options.state_dir))) {
    client::create_state_key_file(state_key_file(options.state_dir));
  }
  return file;
}

std::unique_ptr<Process> start_aggregator(const fs::path& config, const fs::path& log_file) {
  return std::make_unique<Process>(
      "sotto-aggregator", std::vector<std::string>{bin_path("sotto-aggregator").string(), "--config", config.string()},
      log_file);
}

ClientOptions mtls_client_options(const Pki& pki, int i, std::uint16_t port) {
  ClientOptions c;
  c.id = "client-" + std::to_string(i);
  c.port = port;
  c.ca_file = pki.ca();
  c.cert_file = pki.client_cert(i);
  c.key_file = pki.client_key(i);
  return c;
}

std::unique_ptr<Process> start_client(const std::string& name, const fs::path& config, const fs::path& log_file) {
  return std::make_unique<Process>(
      name, std::vector<std::string>{bin_path("sotto-client").string(), "--config", config.string()}, log_file);
}

AggregatorOptions fixed_cohort_options(const fs::path& dir, const Pki& pki, std::uint64_t rounds,
                                       std::uint32_t clients) {
  AggregatorOptions o;
  o.state_dir = dir / "aggregator";
  o.pki = pki;
  o.total_rounds = rounds;
  o.cohort_target = clients;
  o.cohort_min = clients;
  return o;
}

std::vector<std::unique_ptr<Process>> start_mtls_clients(const Pki& pki, int n, std::uint16_t port,
                                                         const fs::path& dir, std::size_t max_examples) {
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= n; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.num_shards = static_cast<std::uint32_t>(n);
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = max_examples;
    clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
  }
  return clients;
}

std::uint16_t wait_for_http_port(const fs::path& state_dir, Seconds timeout) {
  const fs::path file = state_dir / "http_port";
  std::uint16_t port = 0;
  wait_until([&] { return std::ifstream(file) >> port && port != 0; }, timeout);
  return port;
}

// ---- raw connections ---------------------------------------------------------------------------------------------

std::string ReadOutcome::describe() const {
  switch (kind) {
    case Kind::kEnvelope:
      return "envelope " + envelope.ShortDebugString();
    case Kind::kBadFrame:
      return "bad frame: " + detail;
    case Kind::kClosed:
      return "closed: " + detail;
    case Kind::kTimeout:
      return "timeout" + (detail.empty() ? std::string() : ": " + detail);
  }
  return "?";
}

struct Probe::Impl {
  explicit Impl(const ProbeOptions& o) : options(o), context(make_context(o)), stream(io, context) {}

  static ssl::context make_context(const ProbeOptions& o) {
    if (!o.tls) return ssl::context(ssl::context::tls_client);
    const net::TlsClientOptions tls{o.ca_file, o.cert_file, o.key_file};
    return o.tls12_only ? net::make_tls12_only_client_context(tls) : net::make_client_context(tls);
  }

  // Runs one asynchronous operation started by `start` (which gets a completion handler) for at most `timeout`.
  // On timeout the socket is closed (the probe is finished) and `timed_out` is set.
  template <typename Start>
  error_code run(Seconds timeout, Start&& start, std::size_t* transferred = nullptr) {
    std::optional<error_code> result;
    io.restart();
    start([&](error_code ec, std::size_t n = 0) {
      result = ec;
      if (transferred) *transferred = n;
    });
    io.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
    if (!result) {
      timed_out = true;
      error_code ignored;
      stream.lowest_layer().close(ignored);
      io.restart();
      io.run_for(2s);  // let the aborted operation complete
      return asio::error::timed_out;
    }
    return *result;
  }

  template <typename Buffer>
  error_code write(const Buffer& buffer, Seconds timeout) {
    return run(timeout, [&](auto handler) {
      auto h = [handler](error_code ec, std::size_t n) mutable { handler(ec, n); };
      if (handshaken) {
        asio::async_write(stream, buffer, h);
      } else {
        asio::async_write(stream.next_layer(), buffer, h);
      }
    });
  }

  error_code read_some(std::size_t& n, Seconds timeout) {
    return run(
        timeout,
        [&](auto handler) {
          auto h = [handler](error_code ec, std::size_t k) mutable { handler(ec, k); };
          if (handshaken) {
            stream.async_read_some(asio::buffer(chunk), h);
          } else {
            stream.next_layer().async_read_some(asio::buffer(chunk), h);
          }
        },
        &n);
  }

  ProbeOptions options;
  asio::io_context io;
  ssl::context context;
  net::TlsStream stream;
  bool handshaken = false;
  bool timed_out = false;
  bool ended = false;  // closed or failed: nothing more can be read
  std::string end_reason;
  std::string pending;
  std::array<char, 64 * 1024> chunk{};
};

Probe::Probe(const ProbeOptions& options, Seconds timeout) : impl_(std::make_unique<Impl>(options)) {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), options.port);
  if (!options.source_address.empty()) {
    auto& socket = impl_->stream.next_layer();
    socket.open(tcp::v4());
    socket.bind(tcp::endpoint(asio::ip::make_address(options.source_address), 0));
  }
  const error_code ec = impl_->run(timeout, [&](auto handler) {
    impl_->stream.next_layer().async_connect(endpoint, [handler](error_code e) mutable { handler(e, 0); });
  });
  if (ec) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(options.port) + ": " + ec.message());
  }
  error_code ignored;
  impl_->stream.next_layer().set_option(tcp::no_delay(true), ignored);
}

Probe::~Probe() { close(); }

std::string Probe::handshake(Seconds timeout) {
  if (!impl_->options.tls) return "this probe is plain TCP";
  try {
    if (!impl_->options.server_name.empty()) net::expect_server_name(impl_->stream, impl_->options.server_name);
  } catch (const std::exception& e) {
    return e.what();
  }
  const error_code ec = impl_->run(timeout, [&](auto handler) {
    impl_->stream.async_handshake(ssl::stream_base::client, [handler](error_code e) mutable { handler(e, 0); });
  });
  if (ec) {
    impl_->ended = true;
    return ec == asio::error::timed_out ? "TLS handshake timed out" : ec.message();
  }
  impl_->handshaken = true;
  return {};
}

bool Probe::write_raw(const std::string& bytes, Seconds timeout) {
  return !impl_->write(asio::buffer(bytes), timeout);
}

bool Probe::write_envelope(const v1::Envelope& envelope, Seconds timeout) {
  return write_raw(net::encode_frame(envelope), timeout);
}

ReadOutcome Probe::read(Seconds timeout, std::size_t max_frame_bytes) {
  const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);
  ReadOutcome out;
  for (;;) {
    std::string& p = impl_->pending;
    if (p.size() >= net::kFrameHeaderBytes) {
      std::array<std::uint8_t, net::kFrameHeaderBytes> header{};
      std::memcpy(header.data(), p.data(), header.size());
      const std::uint32_t length = net::decode_frame_header(header);
      if (length > max_frame_bytes) {
        out.kind = ReadOutcome::Kind::kBadFrame;
        out.detail = "frame announces " + std::to_string(length) + " bytes (bytes received: " +
                     std::to_string(p.size()) + ")";
        return out;
      }
      if (p.size() >= net::kFrameHeaderBytes + length) {
        const std::string payload = p.substr(net::kFrameHeaderBytes, length);
        p.erase(0, net::kFrameHeaderBytes + length);
        if (out.envelope.ParseFromString(payload)) {
          out.kind = ReadOutcome::Kind::kEnvelope;
        } else {
          out.kind = ReadOutcome::Kind::kBadFrame;
          out.detail = "a frame of " + std::to_string(length) + " bytes that is not an Envelope";
        }
        return out;
      }
    }
    if (impl_->ended) {
      out.kind = ReadOutcome::Kind::kClosed;
      out.detail = impl_->end_reason.empty() ? "connection already ended" : impl_->end_reason;
      return out;
    }
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      out.kind = ReadOutcome::Kind::kTimeout;
      return out;
    }
    std::size_t n = 0;
    const error_code ec = impl_->read_some(n, deadline - now);
    p.append(impl_->chunk.data(), n);
    if (ec == asio::error::timed_out && impl_->timed_out) {
      impl_->ended = true;
      out.kind = ReadOutcome::Kind::kTimeout;
      return out;
    }
    if (ec) {
      impl_->ended = true;
      impl_->end_reason = ec.message() + (p.empty() ? "" : " (" + std::to_string(p.size()) + " stray bytes)");
      if (p.size() >= net::kFrameHeaderBytes) continue;  // a last complete frame may still be buffered
      out.kind = ReadOutcome::Kind::kClosed;
      out.detail = impl_->end_reason;
      return out;
    }
  }
}

std::vector<ReadOutcome> Probe::read_until_closed(Seconds timeout) {
  const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);
  std::vector<ReadOutcome> all;
  for (;;) {
    const auto now = SteadyClock::now();
    const Seconds left = now >= deadline ? Seconds(0) : Seconds(deadline - now);
    all.push_back(read(left));
    if (all.back().kind != ReadOutcome::Kind::kEnvelope) return all;
  }
}

bool Probe::wait_closed(Seconds timeout) {
  const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);
  while (!impl_->ended) {
    const auto now = SteadyClock::now();
    if (now >= deadline) return false;
    std::size_t n = 0;
    const error_code ec = impl_->read_some(n, deadline - now);
    impl_->pending.append(impl_->chunk.data(), n);
    if (ec == asio::error::timed_out && impl_->timed_out) {
      impl_->ended = true;
      return false;
    }
    if (ec) {
      impl_->ended = true;
      impl_->end_reason = ec.message();
      return true;
    }
  }
  return !impl_->timed_out;
}

const std::string& Probe::pending_bytes() const { return impl_->pending; }

void Probe::shutdown_send() {
  error_code ignored;
  impl_->stream.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
}

void Probe::close() {
  error_code ignored;
  impl_->stream.lowest_layer().close(ignored);
}

v1::Envelope hello_envelope(const std::string& client_id, const std::string& token) {
  v1::Envelope env;
  env.set_protocol_version(net::kProtocolVersion);
  env.mutable_hello()->set_client_id(client_id);
  env.mutable_hello()->set_auth_token(token);
  env.mutable_hello()->add_capabilities("fedavg");
  return env;
}

std::string frame_of_payload(const std::string& payload) {
  const auto header = net::encode_frame_header(static_cast<std::uint32_t>(payload.size()));
  return std::string(reinterpret_cast<const char*>(header.data()), header.size()) + payload;
}

// ---- models ------------------------------------------------------------------------------------------------------

bool same_model_bytes(const fs::path& a, const fs::path& b) {
  return codec::read_model_file(a).model == codec::read_model_file(b).model;
}

}  // namespace sotto::test
