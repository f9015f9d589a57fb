#include "aggregator/server.h"

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <deque>
#include <fstream>
#include <map>

#include "aggregator/action_encoder.h"
#include "aggregator/connection.h"
#include "aggregator/listener.h"
#include "aggregator/round_log.h"
#include "aggregator/strategy_factory.h"
#include "common/codec/model_frames.h"
#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
#include "common/net/frame_io.h"
#include "common/net/tls_context.h"
#include "common/secagg/wire_codec.h"
#include "common/util/descriptor_limit.h"
#include "common/util/error.h"

namespace sotto::aggregator {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;

namespace {

// Connections refused by the gate still get a TLS handshake and an error frame; at most this many at once (beyond
// it they are closed at once), so that a flood of refusals costs bounded memory too.
constexpr std::size_t kMaxRefusalsInFlight = 64;
constexpr auto kRefusalHandshakeTimeout = std::chrono::seconds(2);
// Descriptors beyond the connections: the listener and its reserve, files, the event loop's own, LibTorch's.
constexpr std::size_t kSpareDescriptors = 128;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

net::ClientCertificate client_certificate_policy(AuthMode mode) {
  switch (mode) {
    case AuthMode::kMutualTls:
      return net::ClientCertificate::kRequired;
    case AuthMode::kToken:
      return net::ClientCertificate::kNotRequested;
    case AuthMode::kMutualTlsOrToken:
      break;
  }
  return net::ClientCertificate::kOptional;
}

std::string frame_of(v1::Envelope env) {
  return net::encode_frame(std::move(env));
}

}  // namespace

class AggregatorServer::Impl {
 public:
  Impl(AggregatorConfig config, ModelFactory factory, Evaluator evaluator)
      : config_(std::move(config)),
        factory_(std::move(factory)),
        ssl_(net::make_server_context({config_.cert_file, config_.key_file, config_.ca_file,
                                       client_certificate_policy(config_.auth_mode)})),
        authenticator_(config_.auth_mode, config_.tokens),
        gate_(config_.connection_limits),
        recorder_(io_, {config_.state_dir, config_.architecture, config_.strategy.name, config_.keep_round_models},
                  config_.state_dir / "rounds.jsonl", std::move(evaluator)),
        signals_(io_, SIGINT, SIGTERM),
        ticker_(io_) {}

  void run() {
    std::filesystem::create_directories(config_.state_dir);
    raise_descriptor_limit();
    // Listening at once; the start (checkpoint or initial model — which loads LibTorch) is prepared on the
    // evaluation thread meanwhile. Connections complete their TLS handshakes and hellos and wait for it
    // (session()), so clients check in while the aggregator starts instead of backing off.
    listener_ = std::make_unique<Listener>(io_, config_.listen_address, config_.port);
    announce_port();
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      spdlog::info("received signal {}; stopping", signo);
      stop();
    });
    listener_->start([this](tcp::socket socket) { on_accept(std::move(socket)); });
    recorder_.prepare_start(factory_, [this](CoordinatorStart start, std::exception_ptr error) {
      begin_serving(std::move(start), error);
    });
    io_.run();
    recorder_.join();
    if (start_error_) std::rethrow_exception(start_error_);
    if (coordinator_ && coordinator_->gave_up()) throw Error("stopped: " + *coordinator_->gave_up());
    spdlog::info("aggregator stopped after {} completed rounds", coordinator_ ? coordinator_->completed_rounds() : 0);
  }

 private:
  // On the event loop, once the start is prepared: builds the coordinator and lets waiting hellos through.
  void begin_serving(CoordinatorStart start, std::exception_ptr error) {
    if (!error) {
      try {
        coordinator_ = std::make_unique<RoundCoordinator>(config_.rounds, std::move(start), make_strategy(config_.strategy));
      } catch (...) {
        error = std::current_exception();
        coordinator_.reset();
      }
    }
    if (error) {
      start_error_ = error;
      stop();
      return;
    }
    ready_.cancel();
    asio::co_spawn(io_, tick_loop(), asio::detached);
    dispatch(coordinator_->start(Clock::now()));
  }

  // ---- start-up ------------------------------------------------------------------------------------------------
  // The descriptors the configured connection cap needs (all the hard limit allows when it is lifted).
  void raise_descriptor_limit() {
    const std::size_t cap = config_.connection_limits.max_connections;
    const std::size_t needed = cap == 0 ? 0 : cap + kMaxRefusalsInFlight + kSpareDescriptors;
    const auto limit = util::raise_descriptor_limit(needed, "server.max_connections = " + std::to_string(cap));
    spdlog::debug("file-descriptor limit {} (hard {})", limit.soft, limit.hard);
  }

  void announce_port() {
    const auto port = listener_->port();
    std::ofstream(config_.state_dir / "port") << port << '\n';
    spdlog::info("listening on {}:{} (TLS 1.3, auth {})", config_.listen_address, port,
                 config_.auth_mode == AuthMode::kMutualTls ? "mtls"
                 : config_.auth_mode == AuthMode::kToken   ? "token"
                                                           : "mtls_or_token");
  }

  // ---- connections ---------------------------------------------------------------------------------------------
  // A new TCP connection: the gate admits it (it gets a TLS handshake and a hello deadline) or refuses it (it gets
  // a handshake and an error frame naming the cap, while few refusals are in flight; else it is closed at once).
  void on_accept(tcp::socket socket) {
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    const std::string address = remote.address().to_string();
    auto decision = gate_.admit(address);
    if (!decision.admitted()) {
      if (auto untold = refusal_log_.admit(Clock::now())) {
        spdlog::warn("refusing a connection from {}: {} ({} more refused since the last report)", address,
                     decision.refusal, *untold);
      }
      if (refusals_in_flight_ >= kMaxRefusalsInFlight) return;  // the socket closes as it goes out of scope
      ++refusals_in_flight_;
    }
    Connection::Hooks hooks{[this](Connection& conn) { on_deadline(conn); }, [this](Connection& conn) { on_closed(conn); },
                            [this](std::size_t bytes) { bytes_out_ += bytes; }};
    auto c = std::make_shared<Connection>(next_id_++, std::move(socket), ssl_, std::move(hooks));
    c->ticket = std::move(decision.ticket);
    c->refusal = std::move(decision.refusal);
    c->frame_limit = config_.max_hello_bytes;
    c->peer = address + ":" + std::to_string(remote.port());
    connections_[c->id] = c;
    c->start_watchdog();
    asio::co_spawn(io_, session(c), asio::detached);
  }

  // The connection's armed deadline passed: during the session the peer is told (and the coordinator), before the
  // handshake or after the last message it is simply closed.
  void on_deadline(Connection& connection) {
    auto c = connection.shared_from_this();
    if (c->handshake_done && !c->closing) {
      violation(c, v1::ERROR_CODE_DEADLINE_EXCEEDED, c->timeout_reason());
    } else {
      warn_about(c, c->timeout_reason() + "; closing the connection");
      c->close();
    }
  }

  void on_closed(Connection& c) {
    c.ticket.release();
    if (!c.refusal.empty()) --refusals_in_flight_;
    connections_.erase(c.id);
  }

  // A warning about a connection. Before its hello is accepted anyone can cause these at will: throttled.
  void warn_about(const std::shared_ptr<Connection>& c, const std::string& message) {
    if (!c->client_id.empty()) {
      spdlog::warn("{}: {}", c->who(), message);
    } else if (auto untold = unauthenticated_log_.admit(Clock::now())) {
      if (*untold == 0) {
        spdlog::warn("{}: {}", c->who(), message);
      } else {
        spdlog::warn("{}: {} ({} more warnings about unauthenticated connections were not logged)", c->who(), message,
                     *untold);
      }
    }
  }

  // The server itself found the peer misbehaving: tell it, tell the coordinator, close.
  void violation(const std::shared_ptr<Connection>& c, v1::ErrorCode code, const std::string& message) {
    if (c->closing) return;
    warn_about(c, message);
    v1::Envelope env;
    env.mutable_error()->set_code(code);
    env.mutable_error()->set_message(message);
    c->send(std::move(env));
    c->finish_after_flush();
    if (c->in_protocol) {
      c->in_protocol = false;
      dispatch(coordinator_->on_disconnect(c->id, message, Clock::now()));
    }
  }

  // One connection from handshake to close: the hello (authenticated, then handed to the coordinator), then the
  // protocol's messages until either side is done.
  asio::awaitable<void> session(std::shared_ptr<Connection> c) {
    if (!co_await handshake(c)) co_return;
    std::string buffer;
    if (!c->refusal.empty()) {
      co_await refuse(c, buffer);
      co_return;
    }
    try {
      switch (co_await read_hello(c, buffer)) {
        case HelloOutcome::kRefused:
          co_await c->drain(buffer);
          co_return;
        case HelloOutcome::kStopping:
          c->close();
          co_return;
        case HelloOutcome::kAdmitted:
          break;
      }
      if (co_await serve(c, buffer)) co_await c->drain(buffer);
    } catch (const boost::system::system_error& e) {
      lost(c, e.code() == asio::error::eof || e.code() == asio::ssl::error::stream_truncated
                  ? std::string("connection closed by the client")
                  : e.code().message());
    }
  }

  asio::awaitable<bool> handshake(const std::shared_ptr<Connection>& c) {
    if (c->refusal.empty()) {
      c->arm(config_.handshake_timeout, "no TLS handshake within server.handshake_timeout_s");
    } else {
      c->arm(std::min<Duration>(config_.handshake_timeout, kRefusalHandshakeTimeout), "no TLS handshake");
    }
    try {
      co_await c->stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
    } catch (const boost::system::system_error& e) {
      warn_about(c, "TLS handshake refused: " + e.code().message());
      c->close();
      co_return false;
    }
    c->handshake_done = true;
    c->start_writer();
    co_return true;
  }

  enum class HelloOutcome { kAdmitted, kRefused, kStopping };

  // The first frame, within server.hello_timeout_s and server.max_hello_bytes: a hello that authenticates. Then
  // the connection counts as authenticated and, once the coordinator exists, meets it.
  asio::awaitable<HelloOutcome> read_hello(const std::shared_ptr<Connection>& c, std::string& buffer) {
    c->arm(config_.hello_timeout, "no hello within server.hello_timeout_s");
    v1::Envelope env;
    auto r = co_await net::async_read_envelope(c->stream, env, c->frame_limit, buffer);
    bytes_in_ += r.bytes;
    if (c->closing) co_return HelloOutcome::kRefused;
    if (r.error) {
      if (r.error->code == v1::ERROR_CODE_FRAME_TOO_LARGE) {
        r.error->message = "before hello, frames are limited to server.max_hello_bytes = " +
                           std::to_string(c->frame_limit) + " bytes: " + r.error->message;
      }
      violation(c, r.error->code, r.error->message);
      co_return HelloOutcome::kRefused;
    }
    if (!env.has_hello()) {
      violation(c, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "expected hello as the first message, got " + net::body_name(env));
      co_return HelloOutcome::kRefused;
    }
    c->disarm();
    auto identity = authenticate(c, env.hello());
    if (!identity) co_return HelloOutcome::kRefused;
    c->client_id = *identity;
    c->ticket.authenticated();
    c->frame_limit = config_.max_frame_bytes;
    while (!coordinator_ && !stopping_) co_await ready_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!coordinator_) co_return HelloOutcome::kStopping;
    c->in_protocol = true;
    spdlog::debug("{}: hello", c->who());
    dispatch(coordinator_->on_hello(c->id, c->client_id, Clock::now()));
    co_return HelloOutcome::kAdmitted;
  }

  // The protocol's messages after hello, to the coordinator. Returns false when the connection is already closed.
  asio::awaitable<bool> serve(const std::shared_ptr<Connection>& c, std::string& buffer) {
    v1::Envelope env;
    while (!c->closing) {
      auto r = co_await net::async_read_envelope(c->stream, env, c->frame_limit, buffer);
      bytes_in_ += r.bytes;
      if (c->closing) break;
      if (r.error) {
        violation(c, r.error->code, r.error->message);
        break;
      }
      if (env.has_update()) {
        if (coordinator_->in_secure_round()) secagg_in_[2] += r.bytes;
        co_await receive_update(c, env.update(), buffer);
      } else if (env.has_secagg_advertise() || env.has_secagg_shares() || env.has_secagg_unmask_response()) {
        secagg_in_[env.has_secagg_advertise() ? 0 : env.has_secagg_shares() ? 1 : 3] += r.bytes;
        secagg_message(c, env);
      } else if (env.has_error()) {  // the client gives up on the round and says why: its reason is the drop's
        lost(c, "the client reported " + v1::ErrorCode_Name(env.error().code()) + ": " + env.error().message());
        co_return false;
      } else {
        violation(c, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "unexpected " + net::body_name(env) + " message after hello");
      }
    }
    co_return true;
  }

  // A connection the gate refused: one error frame naming the cap, then the same close as any other. Logged by
  // on_accept (throttled), not here, so that a flood of refusals does not flood the log.
  asio::awaitable<void> refuse(std::shared_ptr<Connection> c, std::string& buffer) {
    v1::Envelope env;
    env.mutable_error()->set_code(v1::ERROR_CODE_RESOURCE_EXHAUSTED);
    env.mutable_error()->set_message(c->refusal);
    c->send(std::move(env));
    c->finish_after_flush();
    co_await c->drain(buffer);
  }

  void lost(const std::shared_ptr<Connection>& c, const std::string& reason) {
    const bool was_in_protocol = c->in_protocol && !c->closing;
    c->in_protocol = false;
    c->closing = true;
    c->close();
    if (was_in_protocol) {
      spdlog::info("{}: {}", c->who(), reason);
      dispatch(coordinator_->on_disconnect(c->id, reason, Clock::now()));
    }
  }

  std::optional<std::string> authenticate(const std::shared_ptr<Connection>& c, const v1::Hello& hello) {
    AuthOutcome outcome = authenticator_.authenticate(net::peer_common_name(c->stream), hello);
    if (!outcome.client_id) violation(c, v1::ERROR_CODE_UNAUTHENTICATED, outcome.refusal);
    return outcome.client_id;
  }

  asio::awaitable<void> receive_update(std::shared_ptr<Connection> c, v1::UpdateUpload header, std::string& buffer) {
    ClientUpdate update;
    update.round_id = header.round_id();
    update.num_examples = header.num_examples();
    update.train_loss = header.train_loss();
    update.train_accuracy = header.train_accuracy();
    update.train_seconds = header.train_seconds();
    if (coordinator_->phase() == RoundCoordinator::Phase::kTraining && header.round_id() == coordinator_->round_id()) {
      if (!coordinator_->in_secure_round()) {
        if (auto mismatch = codec::manifest_mismatch(header.delta(), *coordinator_->global_model())) {
          violation(c, v1::ERROR_CODE_INVALID_UPDATE, "update does not match the model: " + *mismatch);
          co_return;
        }
      }
      std::optional<codec::ModelAssembler> assembler;
      try {
        assembler.emplace(header.delta(), coordinator_->max_update_bytes());
      } catch (const Error& e) {
        violation(c, v1::ERROR_CODE_INVALID_UPDATE, std::string("update rejected: ") + e.what());
        co_return;
      }
      while (!assembler->complete()) {
        v1::Envelope env;
        auto r = co_await net::async_read_envelope(c->stream, env, c->frame_limit, buffer);
        bytes_in_ += r.bytes;
        if (coordinator_->in_secure_round()) secagg_in_[2] += r.bytes;  // the masked input's chunks
        if (c->closing) co_return;
        if (r.error) {
          violation(c, r.error->code, r.error->message);
          co_return;
        }
        if (!env.has_chunk()) {
          violation(c, v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                    "expected a chunk of the update, got " + net::body_name(env) + " message");
          co_return;
        }
        if (auto err = assembler->accept(env.chunk())) {
          violation(c, v1::ERROR_CODE_INVALID_UPDATE, "update stream: " + *err);
          co_return;
        }
      }
      update.delta = assembler->take();
    }
    dispatch(coordinator_->on_update(c->id, std::move(update), Clock::now()));
  }

  // A SecAgg+ step message: decoded here, judged by the coordinator.
  void secagg_message(const std::shared_ptr<Connection>& c, const v1::Envelope& env) {
    const auto now = Clock::now();
    try {
      if (env.has_secagg_advertise()) {
        dispatch(coordinator_->on_secagg_advertise(c->id, secagg::from_proto(env.secagg_advertise()), now));
      } else if (env.has_secagg_shares()) {
        dispatch(coordinator_->on_secagg_shares(c->id, secagg::from_proto(env.secagg_shares()), now));
      } else {
        dispatch(coordinator_->on_secagg_unmask(c->id, secagg::from_proto(env.secagg_unmask_response()), now));
      }
    } catch (const Error& e) {
      violation(c, v1::ERROR_CODE_INVALID_UPDATE, e.what());
    }
  }

  // ---- coordinator actions -------------------------------------------------------------------------------------
  std::shared_ptr<Connection> find(ConnectionId id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second;
  }

  void dispatch(Actions actions) {
    for (auto& a : actions) {
      std::visit(Overloaded{
                     [&](action::Admit& x) { reply(x.conn, encode(x), false); },
                     [&](action::RetryLater& x) { reply(x.conn, encode(x), true); },
                     [&](action::SendTask& x) { send_task(x); },
                     [&](action::SendRoundResult& x) { reply(x.conn, encode(x), true); },
                     [&](action::SendFinished& x) { reply(x.conn, encode(x), true); },
                     [&](action::Reject& x) {
                       if (auto c = find(x.conn)) spdlog::warn("{}: rejected: {}", c->who(), x.message);
                       reply(x.conn, encode(x), true);
                     },
                     [&](action::RoundClosed& x) { round_closed(x); },
                     [&](action::SendKeyDirectory& x) {
                       auto frame = std::make_shared<const std::string>(frame_of(encode(x)));
                       for (ConnectionId id : x.conns) {
                         if (auto c = find(id)) {
                           c->send(frame);
                           secagg_out_[0] += frame->size();
                         }
                       }
                     },
                     [&](action::SendShares& x) { secagg_out_[1] += reply(x.conn, encode(x), false); },
                     [&](action::SendUnmaskRequest& x) { secagg_out_[2] += reply(x.conn, encode(x), false); },
                 },
                 a);
    }
    ticker_.cancel();  // the coordinator's next deadline may have moved
    if (coordinator_->finished() && !finishing_) begin_finish();
  }

  // One envelope to one connection, if it is still there; with `last`, the coordinator is done with it and it is
  // closed once the envelope is out. Returns the frame's size (0 when the connection is gone).
  std::size_t reply(ConnectionId id, v1::Envelope env, bool last) {
    auto c = find(id);
    if (!c) return 0;
    if (last) c->in_protocol = false;
    const std::size_t size = c->send(std::move(env));
    if (last) c->finish_after_flush();
    return size;
  }

  void send_task(const action::SendTask& task) {
    if (task.model != encoded_model_) {
      encoded_model_ = task.model;
      model_frames_ = codec::encode_chunk_frames(*task.model, config_.chunk_bytes);
      model_digest_ = codec::model_digest(*task.model);
    }
    // Every connection gets the same frame, except in a secure round, where each task carries its own index.
    codec::SharedFrame shared;
    for (ConnectionId id : task.conns) {
      auto c = find(id);
      if (!c) continue;
      if (task.secagg || !shared) shared = std::make_shared<const std::string>(frame_of(encode_task(task, id, model_digest_)));
      c->send(shared);
      for (const auto& f : model_frames_) c->send(f);
    }
    if (task.secagg) {
      spdlog::info("round {}: training started with {} clients, secure aggregation with k = {}, t = {}",
                   task.round_id, task.conns.size(), task.secagg->config.k, task.secagg->config.t);
    } else {
      spdlog::info("round {}: training started with {} clients", task.round_id, task.conns.size());
    }
  }

  // Checkpointed now; evaluated and logged by the recorder; the next round opens once the line is written.
  void round_closed(const action::RoundClosed& rc) {
    const RoundTraffic traffic{bytes_in_ - logged_in_, bytes_out_ - logged_out_, secagg_in_, secagg_out_};
    secagg_in_ = {};
    secagg_out_ = {};
    logged_in_ = bytes_in_;
    logged_out_ = bytes_out_;
    recorder_.record(rc, traffic, config_.evaluate, [this] { dispatch(coordinator_->on_round_recorded(Clock::now())); });
  }

  // ---- time and shutdown ---------------------------------------------------------------------------------------
  asio::awaitable<void> tick_loop() {
    while (!stopping_) {
      ticker_.expires_at(coordinator_->next_deadline().value_or(TimePoint::max()));
      co_await ticker_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopping_) break;
      const auto deadline = coordinator_->next_deadline();
      if (deadline && Clock::now() >= *deadline) dispatch(coordinator_->on_tick(Clock::now()));
    }
  }

  void begin_finish() {
    finishing_ = true;
    if (coordinator_->gave_up()) {
      spdlog::error("stopping after {} completed rounds: {}", coordinator_->completed_rounds(), *coordinator_->gave_up());
    } else {
      spdlog::info("all {} rounds completed", coordinator_->completed_rounds());
    }
    spdlog::info("telling late clients for {} ms, then stopping", config_.linger.count());
    asio::co_spawn(io_, linger_then_stop(), asio::detached);
  }

  asio::awaitable<void> linger_then_stop() {
    asio::steady_timer timer(io_);
    timer.expires_after(config_.linger);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    while (recorder_.pending() > 0 && !stopping_) {  // the last round's evaluation and log line
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    stop();
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ignored;
    if (listener_) listener_->close();
    signals_.cancel(ignored);
    ticker_.cancel();
    ready_.cancel();
    auto all = connections_;
    for (auto& [id, c] : all) c->close();
    io_.stop();
  }

  AggregatorConfig config_;
  ModelFactory factory_;
  asio::io_context io_{1};
  asio::ssl::context ssl_;
  std::unique_ptr<Listener> listener_;
  Authenticator authenticator_;
  ConnectionGate gate_;
  RoundRecorder recorder_;
  std::size_t refusals_in_flight_ = 0;
  log::LogThrottle refusal_log_{std::chrono::seconds(5)};
  log::LogThrottle unauthenticated_log_{std::chrono::seconds(10), 20};
  asio::signal_set signals_;
  asio::steady_timer ticker_;
  asio::steady_timer ready_{io_, TimePoint::max()};  // cancelled once the coordinator exists
  std::exception_ptr start_error_;
  std::unique_ptr<RoundCoordinator> coordinator_;
  std::map<ConnectionId, std::shared_ptr<Connection>> connections_;
  ConnectionId next_id_ = 1;
  std::shared_ptr<const model::ModelParameters> encoded_model_;
  std::vector<codec::SharedFrame> model_frames_;
  codec::ModelDigest model_digest_{};
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0, logged_in_ = 0, logged_out_ = 0;
  std::array<std::uint64_t, 4> secagg_in_{}, secagg_out_{};  // this round's SecAgg traffic per step
  bool finishing_ = false;
  bool stopping_ = false;
};

AggregatorServer::AggregatorServer(AggregatorConfig config, ModelFactory initial_model, Evaluator evaluator)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(initial_model), std::move(evaluator))) {}
AggregatorServer::~AggregatorServer() = default;
void AggregatorServer::run() {
  impl_->run();
}

}  // namespace sotto::aggregator
