#include "client/client.h"

#include <spdlog/spdlog.h>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cmath>
#include <deque>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <random>

#include "client/ledger.h"
#include "common/codec/model_file.h"
#include "common/codec/model_frames.h"
#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
#include "common/net/frame_io.h"
#include "common/net/tls_context.h"
#include "common/round/message_codec.h"
#include "common/round/participant.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"

namespace sotto::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;
using Clock = std::chrono::steady_clock;

namespace {

enum class SessionEnd { kRoundDone, kRetryLater, kFinished, kDisconnected };

struct SessionResult {
  SessionEnd outcome = SessionEnd::kDisconnected;
  std::chrono::milliseconds retry_delay{0};
  std::string message;
  bool reached = false;   // the TLS handshake succeeded: the aggregator is up
  bool had_task = false;  // the round's task and model arrived
};

// Errors that retrying cannot fix: the client stops with them.
bool is_fatal(v1::ErrorCode code) {
  return code == v1::ERROR_CODE_UNAUTHENTICATED || code == v1::ERROR_CODE_UNSUPPORTED_VERSION;
}

class FatalError : public Error {
 public:
  using Error::Error;
};

}  // namespace

class Client::Impl {
 public:
  Impl(ClientConfig config, std::shared_ptr<Trainer> trainer, std::optional<std::vector<std::uint32_t>> contribution)
      : config_(std::move(config)),
        trainer_(std::move(trainer)),
        contribution_(std::move(contribution)),
        ssl_(net::make_client_context({config_.ca_file, config_.cert_file, config_.key_file})) {
    if (!trainer_ && !contribution_) throw Error("Client needs a trainer or a contribution");
    if (!config_.state_dir.empty()) {
      std::filesystem::create_directories(config_.state_dir);
      ledger_.emplace(config_.state_dir / "ledger.jsonl");
    }
  }

  void on_event(std::function<void(const ClientEvent&)> cb) { callback_ = std::move(cb); }

  RunSummary run() {
    RunSummary summary;
    auto backoff = config_.backoff_initial;
    auto last_contact = Clock::now();
    std::random_device jitter_source;
    while (!stopped_) {
      emit({ClientEventKind::kConnecting, 0, config_.host + ":" + std::to_string(config_.port)});
      SessionResult r = run_session();
      if (r.reached) last_contact = Clock::now();
      // A round this client had its task for has ended for it, however it ended (completed, abandoned, or the
      // session lost mid-round).
      if (r.had_task && r.outcome != SessionEnd::kFinished && config_.max_rounds > 0 &&
          ++rounds_taken_part_ >= config_.max_rounds) {
        summary.rounds_contributed = contributed_;
        emit({ClientEventKind::kFinished, 0, "took part in client.max_rounds rounds"});
        return summary;
      }
      switch (r.outcome) {
        case SessionEnd::kFinished:
          summary.finished = true;
          summary.rounds_contributed = contributed_;
          emit({ClientEventKind::kFinished, 0, r.message});
          return summary;
        case SessionEnd::kRoundDone:
          backoff = config_.backoff_initial;
          continue;
        case SessionEnd::kRetryLater:
          backoff = config_.backoff_initial;
          sleep_for(r.retry_delay);
          continue;
        case SessionEnd::kDisconnected: {
          if (config_.give_up_after.count() > 0 && Clock::now() - last_contact > config_.give_up_after) {
            throw Error("gave up after connection.give_up_after_s without reaching the aggregator at " + config_.host +
                        ":" + std::to_string(config_.port) + "; last error: " + r.message);
          }
          const double jitter = 0.5 + (jitter_source() % 1000) / 1000.0;  // 0.5x .. 1.5x
          const auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(backoff.count() * jitter));
          emit({ClientEventKind::kConnectFailed, 0, r.message, static_cast<double>(wait.count())});
          sleep_for(wait);
          backoff = std::min(backoff * 2, config_.backoff_max);
          continue;
        }
      }
    }
    summary.rounds_contributed = contributed_;
    return summary;
  }

  void stop() {
    stopped_ = true;
    {
      std::lock_guard lock(mutex_);
      if (io_) asio::post(*io_, [this] { abort_session(); });
    }
    wakeup_.notify_all();
  }

 private:
  void emit(const ClientEvent& e) {
    if (callback_) callback_(e);
  }

  void sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    wakeup_.wait_for(lock, d, [this] { return stopped_.load(); });
  }

  SessionResult run_session() {
    asio::io_context io{1};
    {
      std::lock_guard lock(mutex_);
      io_ = &io;
    }
    SessionResult result;
    std::exception_ptr failure;
    asio::co_spawn(io, session(io, result), [&](std::exception_ptr e) { failure = e; });
    io.run();
    {
      std::lock_guard lock(mutex_);
      io_ = nullptr;
    }
    stream_ = nullptr;
    if (failure) std::rethrow_exception(failure);
    return result;
  }

  void abort_session() {
    if (stream_) {
      boost::system::error_code ignored;
      stream_->lowest_layer().close(ignored);
    }
  }

  asio::awaitable<void> watchdog(std::shared_ptr<asio::steady_timer> timer, std::shared_ptr<bool> done) {
    while (!*done) {
      co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
      if (*done) break;
      if (Clock::now() >= timer->expiry()) {
        timed_out_ = true;
        abort_session();
        break;
      }
    }
  }

  asio::awaitable<void> session(asio::io_context& io, SessionResult& result) {
    SslStream stream(io, ssl_);
    stream_ = &stream;
    auto timer = std::make_shared<asio::steady_timer>(io);
    auto done = std::make_shared<bool>(false);
    timed_out_ = false;
    auto arm = [&](std::chrono::milliseconds d) { timer->expires_after(d); };
    arm(config_.connect_timeout);
    asio::co_spawn(io, watchdog(timer, done), asio::detached);
    struct Finally {
      std::shared_ptr<bool> done;
      std::shared_ptr<asio::steady_timer> timer;
      ~Finally() {
        *done = true;
        timer->cancel();
      }
    } finally{done, timer};

    std::string step = "connecting";
    try {
      net::expect_server_name(stream, config_.server_name);
      tcp::resolver resolver(io);
      auto endpoints = co_await resolver.async_resolve(config_.host, std::to_string(config_.port), asio::use_awaitable);
      co_await asio::async_connect(stream.lowest_layer(), endpoints, asio::use_awaitable);
      stream.lowest_layer().set_option(tcp::no_delay(true));
      step = "TLS handshake";
      co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
      result.reached = true;
      co_await converse(stream, arm, step, result);
    } catch (const FatalError&) {
      throw;
    } catch (const Error& e) {
      // The aggregator said something this client cannot use: drop the connection and try again later.
      spdlog::warn("{}: {}", step, e.what());
      result.outcome = SessionEnd::kDisconnected;
      result.message = step + ": " + e.what();
    } catch (const boost::system::system_error& e) {
      result.outcome = SessionEnd::kDisconnected;
      result.message = step + ": " + (timed_out_ ? std::string("timed out") : e.code().message());
      if (step == "TLS handshake" && !timed_out_) {
        spdlog::warn("TLS handshake with {}:{} failed: {} (check server.ca_file, server.server_name and auth)",
                     config_.host, config_.port, e.code().message());
      }
    }
  }

  template <typename Arm>
  asio::awaitable<void> read(SslStream& stream, v1::Envelope& env, Arm& arm, std::chrono::milliseconds timeout) {
    arm(timeout);
    auto r = co_await net::async_read_envelope(stream, env, config_.max_frame_bytes, buffer_);
    bytes_received_ += r.bytes;
    if (r.error) throw Error("aggregator sent a bad frame: " + r.error->message);
  }

  asio::awaitable<void> write(SslStream& stream, v1::Envelope env) {
    const std::string frame = net::encode_frame(std::move(env));
    co_await net::async_write_frame(stream, frame);
    bytes_sent_ += frame.size();
  }

  // Handles an error, finished or retry message that may arrive at any step; returns true when it ended the session.
  bool handle_terminal(const v1::Envelope& env, SessionResult& result) {
    if (env.has_error()) {
      const auto& e = env.error();
      emit({ClientEventKind::kRejected, 0, e.message()});
      if (is_fatal(e.code())) throw FatalError("aggregator refused this client: " + e.message());
      spdlog::warn("aggregator: {} ({})", e.message(), v1::ErrorCode_Name(e.code()));
      result.outcome = SessionEnd::kDisconnected;
      result.message = "aggregator error: " + e.message();
      return true;
    }
    if (env.has_finished()) {
      result.outcome = SessionEnd::kFinished;
      result.message = "training finished after " + std::to_string(env.finished().rounds_completed()) + " rounds";
      return true;
    }
    if (env.has_retry_later()) {
      result.outcome = SessionEnd::kRetryLater;
      result.retry_delay = std::chrono::milliseconds(env.retry_later().delay_ms());
      result.message = env.retry_later().reason();
      emit({ClientEventKind::kRetryLater, 0, result.message, static_cast<double>(result.retry_delay.count())});
      return true;
    }
    return false;
  }

  template <typename Arm>
  asio::awaitable<void> converse(SslStream& stream, Arm& arm, std::string& step, SessionResult& result) {
    bytes_sent_ = bytes_received_ = 0;
    step = "check-in";
    v1::Envelope hello;
    hello.mutable_hello()->set_client_id(config_.client_id);
    hello.mutable_hello()->set_auth_token(config_.auth_token);
    hello.mutable_hello()->add_capabilities("fedavg");
    co_await write(stream, std::move(hello));

    v1::Envelope env;
    co_await read(stream, env, arm, config_.connect_timeout);
    if (handle_terminal(env, result)) co_return;
    if (!env.has_admit()) throw Error("aggregator answered hello with " + net::body_name(env) + ", expected admit");
    const std::uint64_t admitted_round = env.admit().round_id();
    emit({ClientEventKind::kAdmitted, admitted_round, ""});

    step = "waiting for the task";
    co_await read(stream, env, arm, config_.wait_timeout);
    if (handle_terminal(env, result)) co_return;
    if (!env.has_task()) throw Error("aggregator sent " + net::body_name(env) + " where a task was expected");
    const v1::TaskAssignment task = env.task();
    codec::ModelAssembler assembler(task.model(), config_.max_model_bytes);
    step = "receiving the model";
    while (!assembler.complete()) {
      co_await read(stream, env, arm, config_.io_timeout);
      if (handle_terminal(env, result)) co_return;
      if (!env.has_chunk()) throw Error("aggregator sent " + net::body_name(env) + " in the middle of the model");
      if (auto err = assembler.accept(env.chunk())) throw Error("model stream from the aggregator: " + *err);
    }
    emit({ClientEventKind::kTaskReceived, task.round_id(), ""});
    result.had_task = true;
    vanish_if("task");

    // From here the round is the participant's (common/round/participant.h): this loop carries out what it asks
    // and hands it what the aggregator sends.
    round::Participant participant({config_.client_id, contribution_}, random_);
    std::deque<round::Output> queue;
    auto enqueue = [&](round::Outputs outputs) {
      for (auto& o : outputs) queue.push_back(std::move(o));
    };
    enqueue(participant.on_task(round::task_from_proto(task, assembler.take()), Clock::now()));
    for (;;) {
      while (!queue.empty()) {
        round::Output output = std::move(queue.front());
        queue.pop_front();
        if (const auto* finish = std::get_if<round::out::Finish>(&output)) {
          conclude(participant, *finish, result);
          co_return;
        }
        enqueue(co_await carry_out(stream, arm, step, participant, std::move(output)));
      }
      co_await read(stream, env, arm, config_.wait_timeout);
      if (handle_terminal(env, result)) {
        if (participant.record().sent || participant.step() == round::Participant::Step::kAdvertised ||
            participant.step() == round::Participant::Step::kShared) {
          record_in_ledger(participant.record(), "rejected");
        }
        co_return;
      }
      enqueue(deliver(participant, env));
    }
  }

  // One thing the participant asked for: train, or send a message. Returns what the participant says next.
  template <typename Arm>
  asio::awaitable<round::Outputs> carry_out(SslStream& stream, Arm& arm, std::string& step,
                                            round::Participant& participant, round::Output output) {
    if (auto* fit = std::get_if<round::out::Fit>(&output)) co_return train(*fit, arm, step, participant);
    arm(config_.io_timeout);
    if (auto* keys = std::get_if<round::out::AdvertiseKeys>(&output)) {
      step = "secure aggregation";
      co_await write(stream, round::to_envelope(*keys));
      vanish_if("advertise");
    } else if (auto* shares = std::get_if<round::out::ShareKeys>(&output)) {
      co_await write(stream, round::to_envelope(*shares));
      vanish_if("share_keys");
    } else if (auto* upload = std::get_if<round::out::Upload>(&output)) {
      co_await send_upload(stream, arm, step, *upload);
      if (participant.secure()) vanish_if("masked_input");
    } else if (auto* response = std::get_if<round::out::UnmaskResponse>(&output)) {
      co_await write(stream, round::to_envelope(*response));
    } else if (auto* error = std::get_if<round::out::ReportError>(&output)) {
      spdlog::warn("round {}: {}", participant.round_id(), error->message);
      co_await write(stream, round::to_envelope(*error));
    }
    step = "waiting for the round's next step or result";
    co_return round::Outputs{};
  }

  template <typename Arm>
  round::Outputs train(const round::out::Fit& fit, Arm& arm, std::string& step, round::Participant& participant) {
    step = "training";
    arm(std::chrono::hours(24 * 365));  // local work: no socket deadline (the task's own is the participant's)
    round::Fitted fitted;
    try {
      FitResult r = trainer_->fit(*fit.global_model, fit.plan);
      fitted.local_model = std::move(r.local_model);
      fitted.metrics = r.metrics;
    } catch (const std::exception& e) {
      throw FatalError(std::string("local training failed: ") + e.what());
    }
    if (config_.save_local_models && !fitted.local_model->layout_mismatch(*fit.global_model)) {
      codec::write_model_file(config_.state_dir / ("local-round-" + std::to_string(fit.round_id) + ".sotto"),
                              {fit.round_id, fitted.metrics.num_examples, *fitted.local_model, {}, {}});
    }
    emit({ClientEventKind::kTrained, fit.round_id, "", fitted.metrics.mean_loss});
    return participant.on_fitted(std::move(fitted), Clock::now());
  }

  template <typename Arm>
  asio::awaitable<void> send_upload(SslStream& stream, Arm& arm, std::string& step, const round::out::Upload& upload) {
    step = "uploading the update";
    const model::ModelParameters payload = round::upload_payload(upload);
    v1::Envelope header;
    *header.mutable_update() = round::upload_header(upload, payload);
    co_await write(stream, std::move(header));
    for (const auto& frame : codec::encode_chunk_frames(payload, config_.chunk_bytes)) {
      arm(config_.io_timeout);
      co_await net::async_write_frame(stream, *frame);
      bytes_sent_ += frame->size();
    }
    emit({ClientEventKind::kUploaded, upload.round_id, "", static_cast<double>(bytes_sent_)});
  }

  // An aggregator message in the middle of a round, for the participant.
  round::Outputs deliver(round::Participant& participant, const v1::Envelope& env) {
    const auto now = Clock::now();
    if (env.has_secagg_key_directory()) {
      return participant.on_key_directory(secagg::from_proto(env.secagg_key_directory()), now);
    }
    if (env.has_secagg_shares()) return participant.on_shares({secagg::from_proto(env.secagg_shares())}, now);
    if (env.has_secagg_unmask_request()) {
      return participant.on_unmask_request(secagg::from_proto(env.secagg_unmask_request()), now);
    }
    if (env.has_round_result()) return participant.on_result(round::result_from_proto(env.round_result()), now);
    throw Error("aggregator sent " + net::body_name(env) + " where the round's next step or result was expected");
  }

  // Fault injection for tests and simulations (ClientConfig::vanish_after): disappear without a word after this
  // step.
  void vanish_if(const char* step) const {
    if (config_.vanish_after == step) {
      spdlog::warn("fault injection: vanishing after the step '{}'", step);
      spdlog::default_logger()->flush();
      std::_Exit(97);
    }
  }

  // The round is over for the participant: the ledger, the events, and what the session does next.
  void conclude(const round::Participant& participant, const round::out::Finish& finish, SessionResult& result) {
    using round::out::Outcome;
    const std::uint64_t round_id = participant.round_id();
    switch (finish.outcome) {
      case Outcome::kCompleted:
      case Outcome::kAbandoned: {
        const bool completed = finish.outcome == Outcome::kCompleted;
        record_in_ledger(participant.record(), completed ? "completed" : "abandoned");
        if (completed) ++contributed_;
        emit({completed ? ClientEventKind::kRoundCompleted : ClientEventKind::kRoundAbandoned, round_id,
              finish.message});
        result.outcome = finish.training_finished ? SessionEnd::kFinished : SessionEnd::kRoundDone;
        result.message = finish.training_finished ? "training finished" : finish.message;
        return;
      }
      case Outcome::kDiverged:
      case Outcome::kDeadline:
        spdlog::warn("round {}: {}", round_id, finish.message);
        result.outcome = SessionEnd::kRoundDone;
        result.message = finish.message;
        return;
      case Outcome::kFailed:
        if (finish.fatal) throw FatalError(finish.message);
        if (participant.record().sent) record_in_ledger(participant.record(), "rejected");
        result.outcome = SessionEnd::kDisconnected;
        result.message = finish.message;
        return;
    }
  }

  void record_in_ledger(const round::ContributionRecord& r, const std::string& outcome) {
    if (!ledger_) return;
    ledger_->append({r.round_id, outcome, r.num_examples, bytes_sent_, bytes_received_, r.train_loss,
                     r.update_l2_norm, r.secure, r.clip_norm});
  }

  ClientConfig config_;
  std::shared_ptr<Trainer> trainer_;
  std::optional<std::vector<std::uint32_t>> contribution_;
  asio::ssl::context ssl_;
  std::optional<Ledger> ledger_;
  round::SystemRandom random_;  // the quantizer's rounding coins
  std::function<void(const ClientEvent&)> callback_;
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  std::condition_variable wakeup_;
  asio::io_context* io_ = nullptr;
  SslStream* stream_ = nullptr;
  bool timed_out_ = false;
  std::string buffer_;
  std::uint64_t bytes_sent_ = 0, bytes_received_ = 0;
  std::uint64_t contributed_ = 0;
  std::uint64_t rounds_taken_part_ = 0;  // rounds that ended with this client in the cohort, completed or not
};

Client::Client(ClientConfig config, std::shared_ptr<Trainer> trainer)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(trainer), std::nullopt)) {}
Client::Client(ClientConfig config, std::vector<std::uint32_t> contribution)
    : impl_(std::make_unique<Impl>(std::move(config), nullptr, std::move(contribution))) {}
Client::~Client() = default;
void Client::on_event(std::function<void(const ClientEvent&)> callback) {
  impl_->on_event(std::move(callback));
}
RunSummary Client::run() {
  return impl_->run();
}
void Client::stop() {
  impl_->stop();
}

}  // namespace sotto::client
