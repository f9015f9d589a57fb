#include "aggregator/server.h"

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <fstream>
#include <map>

#include "aggregator/action_encoder.h"
#include "aggregator/connection.h"
#include "aggregator/conversation.h"
#include "aggregator/listener.h"
#include "aggregator/metrics.h"
#include "aggregator/operator_endpoint.h"
#include "aggregator/round_log.h"
#include "aggregator/server_credentials.h"
#include "aggregator/strategy_factory.h"
#include "common/codec/model_frames.h"
#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
#include "common/net/frame_io.h"
#include "common/secagg/wire_codec.h"
#include "common/util/descriptor_limit.h"
#include "common/util/error.h"

namespace sotto::aggregator {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

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

std::string frame_of(v1::Envelope env) {
  return net::encode_frame(std::move(env));
}

}  // namespace

class AggregatorServer::Impl final : public ConversationHost {
 public:
  Impl(AggregatorConfig config, ModelFactory factory, Evaluator evaluator, std::function<AggregatorConfig()> reload)
      : config_(std::move(config)),
        factory_(std::move(factory)),
        reload_(std::move(reload)),
        credentials_(config_),
        conversation_(*this, credentials_.authenticator(),
                      {config_.handshake_timeout, kRefusalHandshakeTimeout, config_.hello_timeout,
                       config_.max_frame_bytes, config_.max_upload_assembly_bytes}),
        gate_(config_.connection_limits),
        recorder_(io_, {config_.state_dir, config_.model.describe(), config_.strategy.name, config_.keep_round_models},
                  config_.state_dir / "rounds.jsonl", std::move(evaluator)),
        signals_(io_, SIGINT, SIGTERM),
        hangups_(io_, SIGHUP),
        ticker_(io_) {
  }

  void run() {
    std::filesystem::create_directories(config_.state_dir);
    raise_descriptor_limit();
    // Listening at once; the start (checkpoint or initial model — which loads LibTorch) is prepared on the
    // evaluation thread meanwhile. Connections complete their TLS handshakes and hellos and wait for it
    // (session()), so clients check in while the aggregator starts instead of backing off.
    listener_ = std::make_unique<Listener>(io_, config_.listen_address, config_.port);
    announce_port();
    start_http();
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      spdlog::info("received signal {}; stopping", signo);
      stop();
    });
    await_hangup();
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
        CoordinatorOptions options = config_.rounds;
        options.stopwatch = [] { return Clock::now(); };  // times the strategy's work for rounds.jsonl
        coordinator_ = std::make_unique<RoundCoordinator>(std::move(options), std::move(start),
                                                          make_strategy(config_.strategy));
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
    spdlog::info("ready: {} rounds completed, next round {}; admitting clients", coordinator_->completed_rounds(),
                 coordinator_->round_id());
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
    spdlog::info("listening on {}:{} (TLS 1.3, auth {}); checking the checkpoint before admitting anyone: hellos "
                 "wait until then",
                 config_.listen_address, port,
                 config_.auth_mode == AuthMode::kMutualTls ? "mtls"
                 : config_.auth_mode == AuthMode::kToken   ? "token"
                                                           : "mtls_or_token");
  }

  // The operators' endpoint, when [http] enables it.
  void start_http() {
    if (!config_.http.enabled) return;
    http_ = std::make_unique<OperatorEndpoint>(
        io_, config_, credentials_.https(),
        OperatorEndpoint::Sources{&metrics_, [this] { return coordinator_.get(); }, [this] { return stopping_; }});
  }

  // ---- SIGHUP: rotation without a restart ----------------------------------------------------------------------
  void await_hangup() {
    hangups_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec || stopping_) return;
      reload();
      await_hangup();
    });
  }

  // The new credentials serve the connections (and HTTPS requests) accepted from now on (server_credentials.h).
  void reload() {
    if (!reload_) {
      spdlog::warn("SIGHUP: this server was started without a config file to reload; ignored");
      return;
    }
    try {
      const AggregatorConfig fresh = reload_();
      credentials_.rotate(fresh);
      if (http_) http_->use_certificate(credentials_.https());
      spdlog::info("SIGHUP: reloaded the server certificate {}, the client CA {}, {} and {} client tokens; new "
                   "connections use them (other changed keys need a restart)",
                   fresh.cert_file.string(), fresh.ca_file.string(), fresh.crl_file.empty() ? std::string("no CRL")
                   : "the CRL " + fresh.crl_file.string(), fresh.client_tokens.size());
    } catch (const std::exception& e) {
      spdlog::error("SIGHUP: reload failed, keeping the current certificate, CA and tokens: {}", e.what());
    }
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
      metrics_.connection_refused("connection_cap");
      if (auto untold = refusal_log_.admit(Clock::now())) {
        spdlog::warn("refusing a connection from {}: {} ({} more refused since the last report)", address,
                     decision.refusal, *untold);
      }
      if (refusals_in_flight_ >= kMaxRefusalsInFlight) return;  // the socket closes as it goes out of scope
      ++refusals_in_flight_;
    }
    Connection::Hooks hooks{[this](Connection& conn) { on_deadline(conn); }, [this](Connection& conn) { on_closed(conn); },
                            [this](std::size_t bytes) {
                              bytes_out_ += bytes;
                              metrics_.bytes_sent(bytes);
                            }};
    auto c = std::make_shared<Connection>(next_id_++, std::move(socket), credentials_.tls(), std::move(hooks));
    c->ticket = std::move(decision.ticket);
    c->refusal = std::move(decision.refusal);
    c->frame_limit = config_.max_hello_bytes;
    c->peer = address + ":" + std::to_string(remote.port());
    connections_[c->id] = c;
    metrics_.connection_opened();
    c->start_watchdog();
    asio::co_spawn(io_, conversation_.run(c), asio::detached);
  }

  // The connection's armed deadline passed: during the session the peer is told (and the coordinator), before the
  // handshake or after the last message it is simply closed.
  void on_deadline(Connection& connection) {
    auto c = connection.shared_from_this();
    if (c->handshake_done && !c->closing) {
      conversation_.violation(c, v1::ERROR_CODE_DEADLINE_EXCEEDED, c->timeout_reason());
    } else {
      warn_about(*c, c->timeout_reason() + "; closing the connection");
      c->close();
    }
  }

  void on_closed(Connection& c) {
    c.ticket.release();
    if (!c.refusal.empty()) --refusals_in_flight_;
    if (connections_.erase(c.id)) metrics_.connection_closed();
  }

  // ---- ConversationHost ----------------------------------------------------------------------------------------
  RoundCoordinator* coordinator() override { return coordinator_.get(); }

  asio::awaitable<void> coordinator_ready() override {
    while (!coordinator_ && !stopping_) co_await ready_.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  void count_received(std::size_t bytes, std::optional<secagg::Step> step) override {
    bytes_in_ += bytes;
    metrics_.bytes_received(bytes);
    if (step) secagg_in_[*step] += bytes;
  }

  // Before its hello is accepted anyone can cause these at will: throttled.
  void warn_about(const Connection& c, const std::string& message) override {
    if (!c.client_id.empty()) {
      spdlog::warn("{}: {}", c.who(), message);
    } else if (auto untold = unauthenticated_log_.admit(Clock::now())) {
      if (*untold == 0) {
        spdlog::warn("{}: {}", c.who(), message);
      } else {
        spdlog::warn("{}: {} ({} more warnings about unauthenticated connections were not logged)", c.who(), message,
                     *untold);
      }
    }
  }

  // ---- coordinator actions -------------------------------------------------------------------------------------
  std::shared_ptr<Connection> find(ConnectionId id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second;
  }

  void dispatch(Actions actions) override {
    std::optional<std::string> debit_failed;  // then nothing after the debit in this batch may go out
    for (auto& a : actions) {
      if (debit_failed && std::holds_alternative<action::SendUnmaskRequest>(a)) continue;
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
                       if (auto c = find(x.conn)) {
                         auto frame = std::make_shared<const std::string>(frame_of(encode(x)));
                         c->send(frame);
                         secagg_out_[secagg::Step::kAdvertiseKeys] += frame->size();
                       }
                     },
                     [&](action::SendShares& x) {
                       secagg_out_[secagg::Step::kShareKeys] += reply(x.conn, encode(x), false);
                     },
                     [&](action::SendUnmaskRequest& x) {
                       secagg_out_[secagg::Step::kMaskedInput] += reply(x.conn, encode(x), false);
                     },
                     [&](action::DebitPrivacy& x) {
                       try {
                         recorder_.debit_privacy(x.charge, config_.rounds.privacy, x.charge.ddg.honest);
                       } catch (const Error& e) {
                         spdlog::error("round {}: {}", x.charge.round_id, e.what());
                         debit_failed = "the privacy journal could not be written, so the sum is not unmasked: " +
                                        std::string(e.what());
                       }
                     },
                 },
                 a);
    }
    if (debit_failed) {
      dispatch(coordinator_->abandon_round(*debit_failed, Clock::now()));
      return;
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

  // The model's frames, shared by the task's connections, are freed once written (kept, they hold a model copy).
  void send_task(const action::SendTask& task) {
    if (digested_model_.lock() != task.model) {
      digested_model_ = task.model;
      model_digest_ = codec::model_digest(*task.model);
    }
    const std::vector<codec::SharedFrame> model_frames = codec::encode_chunk_frames(*task.model, config_.chunk_bytes);
    // Every connection gets the same frame, except in a secure round, where each task carries its own index.
    codec::SharedFrame shared;
    for (ConnectionId id : task.conns) {
      auto c = find(id);
      if (!c) continue;
      if (task.secagg || !shared) shared = std::make_shared<const std::string>(frame_of(encode_task(task, id, model_digest_)));
      c->send(shared);
      for (const auto& f : model_frames) c->send(f);
    }
    if (task.secagg) {
      spdlog::info("round {}: training started with {} clients, secure aggregation with k = {}, t = {}",
                   task.round_id, task.conns.size(), task.secagg->config.k, task.secagg->config.t);
    } else {
      spdlog::info("round {}: training started with {} clients", task.round_id, task.conns.size());
    }
  }

  // Checkpointed now; evaluated and logged by the recorder; the next round opens once the line is written.
  void count_refused(std::string_view reason) override { metrics_.connection_refused(reason); }

  void round_closed(const action::RoundClosed& rc) {
    metrics_.round_closed(rc.report, rc.completed_rounds);
    const RoundTraffic traffic{bytes_in_ - logged_in_, bytes_out_ - logged_out_, secagg_in_, secagg_out_};
    secagg_in_ = {};
    secagg_out_ = {};
    logged_in_ = bytes_in_;
    logged_out_ = bytes_out_;
    recorder_.record(rc, traffic, config_.evaluate, [this] {
      dispatch(coordinator_->on_round_recorded(Clock::now()));
      if (stop_when_recorded_ && recorder_.pending() == 0) stop();
    });
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
    if (coordinator_->budget_spent()) {
      spdlog::info("stopping after {} completed rounds: {}", coordinator_->completed_rounds(),
                   *coordinator_->budget_spent());
    } else if (coordinator_->gave_up()) {
      spdlog::error("stopping after {} completed rounds: {}", coordinator_->completed_rounds(), *coordinator_->gave_up());
    } else {
      spdlog::info("all {} rounds completed", coordinator_->completed_rounds());
    }
    spdlog::info("telling late clients for {} ms, then stopping", config_.linger.count());
    asio::co_spawn(io_, linger_then_stop(), asio::detached);
  }

  // After the linger, the daemon stops once the last round's evaluation and log line are done (round_closed's
  // callback stops it then).
  asio::awaitable<void> linger_then_stop() {
    asio::steady_timer timer(io_);
    timer.expires_after(config_.linger);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    stop_when_recorded_ = true;
    if (recorder_.pending() == 0) stop();
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ignored;
    if (listener_) listener_->close();
    if (http_) http_->close();
    signals_.cancel(ignored);
    hangups_.cancel(ignored);
    ticker_.cancel();
    ready_.cancel();
    auto all = connections_;
    for (auto& [id, c] : all) c->close();
    io_.stop();
  }

  AggregatorConfig config_;
  ModelFactory factory_;
  std::function<AggregatorConfig()> reload_;
  asio::io_context io_{1};
  std::unique_ptr<Listener> listener_;
  AggregatorMetrics metrics_;
  std::unique_ptr<OperatorEndpoint> http_;
  ServerCredentials credentials_;
  Conversation conversation_;
  ConnectionGate gate_;
  RoundRecorder recorder_;
  std::size_t refusals_in_flight_ = 0;
  log::LogThrottle refusal_log_{std::chrono::seconds(5)};
  log::LogThrottle unauthenticated_log_{std::chrono::seconds(10), 20};
  asio::signal_set signals_;
  asio::signal_set hangups_;
  asio::steady_timer ticker_;
  asio::steady_timer ready_{io_, TimePoint::max()};  // cancelled once the coordinator exists
  std::exception_ptr start_error_;
  std::unique_ptr<RoundCoordinator> coordinator_;
  std::map<ConnectionId, std::shared_ptr<Connection>> connections_;
  ConnectionId next_id_ = 1;
  std::weak_ptr<const model::ModelParameters> digested_model_;  // the model model_digest_ is of
  codec::ModelDigest model_digest_{};
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0, logged_in_ = 0, logged_out_ = 0;
  secagg::PerStep<std::uint64_t> secagg_in_, secagg_out_;  // this round's SecAgg traffic per step
  bool finishing_ = false;
  bool stop_when_recorded_ = false;
  bool stopping_ = false;
};

AggregatorServer::AggregatorServer(AggregatorConfig config, ModelFactory initial_model, Evaluator evaluator,
                                   std::function<AggregatorConfig()> reload)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(initial_model), std::move(evaluator),
                                   std::move(reload))) {}
AggregatorServer::~AggregatorServer() = default;
void AggregatorServer::run() { impl_->run(); }

}  // namespace sotto::aggregator
