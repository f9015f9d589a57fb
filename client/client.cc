#include "client/client.h"

#include <spdlog/spdlog.h>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cmath>
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
#include "common/secagg/client_session.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/update_vector.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"

namespace sotto::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;
using Clock = std::chrono::steady_clock;

namespace {

enum class Outcome { kRoundDone, kRetryLater, kFinished, kDisconnected };

struct SessionResult {
  Outcome outcome = Outcome::kDisconnected;
  std::chrono::milliseconds retry_delay{0};
  std::string message;
  bool reached = false;   // the TLS handshake succeeded: the aggregator is up
  bool had_task = false;  // the round's task and model arrived
};

// Errors that retrying cannot fix: the client stops with them.
bool is_fatal(v1::ErrorCode code) {
  return code == v1::ERROR_CODE_UNAUTHENTICATED || code == v1::ERROR_CODE_UNSUPPORTED_VERSION;
}

double l2_norm(const model::ModelParameters& p) {
  double sum = 0;
  for (const auto& t : p.tensors()) {
    if (t.dtype == model::DType::kFloat32) {
      for (float v : t.as<float>()) sum += static_cast<double>(v) * v;
    } else if (t.dtype == model::DType::kFloat64) {
      for (double v : t.as<double>()) sum += v * v;
    }
  }
  return std::sqrt(sum);
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
      if (r.had_task && r.outcome != Outcome::kFinished && config_.max_rounds > 0 &&
          ++rounds_taken_part_ >= config_.max_rounds) {
        summary.rounds_contributed = contributed_;
        emit({ClientEventKind::kFinished, 0, "took part in client.max_rounds rounds"});
        return summary;
      }
      switch (r.outcome) {
        case Outcome::kFinished:
          summary.finished = true;
          summary.rounds_contributed = contributed_;
          emit({ClientEventKind::kFinished, 0, r.message});
          return summary;
        case Outcome::kRoundDone:
          backoff = config_.backoff_initial;
          continue;
        case Outcome::kRetryLater:
          backoff = config_.backoff_initial;
          sleep_for(r.retry_delay);
          continue;
        case Outcome::kDisconnected: {
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
      result.outcome = Outcome::kDisconnected;
      result.message = step + ": " + e.what();
    } catch (const boost::system::system_error& e) {
      result.outcome = Outcome::kDisconnected;
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
      result.outcome = Outcome::kDisconnected;
      result.message = "aggregator error: " + e.message();
      return true;
    }
    if (env.has_finished()) {
      result.outcome = Outcome::kFinished;
      result.message = "training finished after " + std::to_string(env.finished().rounds_completed()) + " rounds";
      return true;
    }
    if (env.has_retry_later()) {
      result.outcome = Outcome::kRetryLater;
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
    ml::TrainingPlan plan = codec::plan_from_proto(task.plan());
    plan.seed = ml::client_training_seed(plan.seed, config_.client_id);
    codec::ModelAssembler assembler(task.model(), config_.max_model_bytes);
    step = "receiving the model";
    while (!assembler.complete()) {
      co_await read(stream, env, arm, config_.io_timeout);
      if (handle_terminal(env, result)) co_return;
      if (!env.has_chunk()) throw Error("aggregator sent " + net::body_name(env) + " in the middle of the model");
      if (auto err = assembler.accept(env.chunk())) throw Error("model stream from the aggregator: " + *err);
    }
    const model::ModelParameters global = assembler.take();
    emit({ClientEventKind::kTaskReceived, task.round_id(), ""});
    result.had_task = true;
    vanish_if("task");

    const bool contributing = task.kind() == v1::TASK_KIND_SECURE_SUM;
    if (contributing && (!contribution_ || !task.has_secagg())) {
      throw FatalError("the aggregator runs a secure sum, but this client has no contribution (sotto-client --contribute)");
    }
    if (!contributing && !trainer_) {
      throw FatalError("this client was started to contribute to a secure sum, but the aggregator runs training");
    }
    FitResult fit;
    model::ModelParameters delta;
    if (contributing) {
      fit.metrics.num_examples = 1;  // one contribution
    } else {
      step = "training";
      arm(std::chrono::hours(24 * 365));  // local work: no socket deadline
      try {
        fit = trainer_->fit(global, plan);
      } catch (const std::exception& e) {
        throw FatalError(std::string("local training failed: ") + e.what());
      }
      if (auto mismatch = fit.local_model.layout_mismatch(global)) {
        throw FatalError("the trainer returned a model that does not match the global model: " + *mismatch);
      }
      delta = model::subtract(fit.local_model, global);
      if (config_.save_local_models) {
        codec::write_model_file(config_.state_dir / ("local-round-" + std::to_string(task.round_id()) + ".sotto"),
                                {task.round_id(), fit.metrics.num_examples, fit.local_model, {}, {}});
      }
      emit({ClientEventKind::kTrained, task.round_id(), "", fit.metrics.mean_loss});
    }

    step = "uploading the update";
    if (auto bad = delta.first_non_finite()) {
      v1::Envelope error;
      error.mutable_error()->set_code(v1::ERROR_CODE_INVALID_UPDATE);
      error.mutable_error()->set_message("local training diverged: " + *bad);
      co_await write(stream, std::move(error));
      result.outcome = Outcome::kRoundDone;
      result.message = "local training diverged; no update sent";
      co_return;
    }
    LedgerEntry entry{task.round_id(), "rejected", fit.metrics.num_examples, 0, 0, fit.metrics.mean_loss,
                      l2_norm(delta)};
    // A plain round sends the delta; a secure round sends it clipped, quantized and masked, in four steps.
    model::ModelParameters payload = delta;
    std::optional<secagg::ClientSession> secure;
    if (task.has_secagg()) {
      step = "secure aggregation";
      const auto& sa = task.secagg();
      const std::uint32_t bits = sa.bits() == 0 ? 32 : sa.bits();
      entry.secure = true;
      std::vector<std::uint32_t> input;
      if (contributing) {
        if (contribution_->size() != sa.vector_length()) {
          throw FatalError("the aggregator's secure sum takes " + std::to_string(sa.vector_length()) +
                           " integers, the contribution has " + std::to_string(contribution_->size()));
        }
        input = *contribution_;
      } else {
        const secagg::Quantizer quantizer({sa.clip_norm(), sa.n(), bits});
        const std::vector<float> flat = secagg::flatten_floating(delta);
        if (flat.size() != sa.vector_length()) {
          throw Error("secure aggregation expects " + std::to_string(sa.vector_length()) + " values, the update has " +
                      std::to_string(flat.size()));
        }
        entry.clip_norm = sa.clip_norm();
        input = quantizer.encode(flat, &entry.update_l2_norm);
      }
      secure.emplace(secagg::RoundConfig{task.round_id(), sa.n(), sa.k(), sa.t(), sa.vector_length(), bits},
                     sa.my_index(),
                     std::move(input));
      v1::Envelope advertise;
      *advertise.mutable_secagg_advertise() = secagg::to_proto(secure->start());
      arm(config_.io_timeout);
      co_await write(stream, std::move(advertise));
      vanish_if("advertise");
      co_await read(stream, env, arm, config_.wait_timeout);
      if (!env.has_secagg_key_directory()) co_return conclude(env, result, entry);
      v1::Envelope shares;
      *shares.mutable_secagg_shares() =
          secagg::to_proto(secure->on_key_directory(secagg::from_proto(env.secagg_key_directory())).shares);
      arm(config_.io_timeout);
      co_await write(stream, std::move(shares));
      vanish_if("share_keys");
      co_await read(stream, env, arm, config_.wait_timeout);
      if (!env.has_secagg_shares()) co_return conclude(env, result, entry);
      const secagg::MaskedInput masked = secure->on_shares(secagg::SharesForYou{secagg::from_proto(env.secagg_shares())});
      payload = secagg::masked_input_parameters(masked.y, bits);
    }
    v1::Envelope upload;
    auto* u = upload.mutable_update();
    u->set_round_id(task.round_id());
    u->set_num_examples(fit.metrics.num_examples);
    u->set_train_loss(fit.metrics.mean_loss);
    u->set_train_accuracy(fit.metrics.accuracy);
    u->set_train_seconds(fit.metrics.seconds);
    *u->mutable_delta() = codec::make_manifest(payload);
    arm(config_.io_timeout);
    co_await write(stream, std::move(upload));
    for (const auto& frame : codec::encode_chunk_frames(payload, config_.chunk_bytes)) {
      arm(config_.io_timeout);
      co_await net::async_write_frame(stream, *frame);
      bytes_sent_ += frame->size();
    }
    emit({ClientEventKind::kUploaded, task.round_id(), "", static_cast<double>(bytes_sent_)});
    if (secure) vanish_if("masked_input");
    if (secure) {
      co_await read(stream, env, arm, config_.wait_timeout);
      if (!env.has_secagg_unmask_request()) co_return conclude(env, result, entry);
      v1::Envelope response;
      *response.mutable_secagg_unmask_response() =
          secagg::to_proto(secure->on_unmask_request(secagg::from_proto(env.secagg_unmask_request())));
      arm(config_.io_timeout);
      co_await write(stream, std::move(response));
    }

    step = "waiting for the round's result";
    co_await read(stream, env, arm, config_.wait_timeout);
    conclude(env, result, entry);
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

  // The round's last message: its result, or an error or finished notice. Records the contribution in the ledger.
  void conclude(const v1::Envelope& env, SessionResult& result, LedgerEntry& entry) {
    entry.bytes_sent = bytes_sent_;
    entry.bytes_received = bytes_received_;
    if (env.has_round_result()) {
      const auto& rr = env.round_result();
      const bool completed = rr.outcome() == v1::ROUND_OUTCOME_COMPLETED;
      entry.outcome = completed ? "completed" : "abandoned";
      if (completed) ++contributed_;
      emit({completed ? ClientEventKind::kRoundCompleted : ClientEventKind::kRoundAbandoned, rr.round_id(),
            rr.message()});
      result.outcome = rr.training_finished() ? Outcome::kFinished : Outcome::kRoundDone;
      result.message = rr.training_finished() ? "training finished" : rr.message();
    } else if (!handle_terminal(env, result)) {
      throw Error("aggregator sent " + net::body_name(env) + " where the round's next step or result was expected");
    }
    if (ledger_) ledger_->append(entry);
  }

  ClientConfig config_;
  std::shared_ptr<Trainer> trainer_;
  std::optional<std::vector<std::uint32_t>> contribution_;
  asio::ssl::context ssl_;
  std::optional<Ledger> ledger_;
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
