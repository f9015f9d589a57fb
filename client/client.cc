#include "client/client.h"

#include <spdlog/spdlog.h>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <mutex>
#include <openssl/crypto.h>

#include "client/aggregator_link.h"
#include "client/backoff.h"
#include "client/consent_gate.h"
#include "client/round_limits.h"
#include "client/fault_injection.h"
#include "client/ledger.h"
#include "client/round_driver.h"
#include "client/session_outcome.h"
#include "client/state_store.h"
#include "common/codec/model_stream.h"
#include "common/net/frame_io.h"
#include "common/net/tls_context.h"
#include "common/round/message_codec.h"
#include "common/util/error.h"

namespace sotto::client {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Client::Impl {
 public:
  Impl(ClientConfig config, std::shared_ptr<Trainer> trainer, std::optional<std::vector<std::uint32_t>> contribution)
      : config_(std::move(config)),
        trainer_(std::move(trainer)),
        contribution_(std::move(contribution)),
        needed_(trainer_ ? ConsentScope::kTraining : ConsentScope::kAnalytics),
        ssl_(net::make_client_context({config_.ca_file, config_.cert_file, config_.key_file})) {
    if (!trainer_ && !contribution_) throw Error("Client needs a trainer or a contribution");
    if (!config_.state_dir.empty()) {
      open_state_store();
      ledger_.emplace(*store_);
      privacy_spent_ = ledger_->spent_rdp();
      limits_.traffic().count_ledger(ledger_->entries(), DailyTraffic::Clock::now());
    }
    consent_ = std::make_unique<ConsentGate>(store_ ? &*store_ : nullptr);
    personal_state_.emplace(store_ ? &*store_ : nullptr);
  }

  void set_consent(bool granted, ConsentScope scope, OnRevoke on_revoke) {
    if (granted) {
      consent_->grant(scope);
      return;
    }
    // Whatever happens to the record on disk, the connection is cut, training stops and the data goes.
    std::exception_ptr failure;
    try {
      consent_->revoke();  // the connection is cut; no personal data is written from here
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (training_) training_->stop("the person revoked consent");
    }
    wakeup_.notify_all();
    if (store_) delete_personal_data(*store_, on_revoke);
    personal_state_->erase();
    forget_personal_model_ = true;  // and the trainer's copy in memory, on the training thread
    if (failure) std::rethrow_exception(failure);
  }
  ConsentRecord consent() const { return consent_->record(); }

  void cancel() {
    std::lock_guard lock(mutex_);
    if (training_) training_->stop("cancelled by the app");
  }
  void set_limits(const DeviceLimits& limits) {
    std::lock_guard lock(mutex_);  // run() marks itself running under it, then reads the limits
    if (running_) throw Error("Client::set_limits: set the limits before run()");
    config_.limits = limits;
  }
  void set_eligibility(EligibilityCheck check) {
    std::lock_guard lock(mutex_);
    eligibility_ = std::move(check);
  }
  void eligibility_changed() {
    {
      std::lock_guard lock(mutex_);
      ++eligibility_changes_;
    }
    wakeup_.notify_all();
  }
  std::uint64_t state_generation() const { return store_ ? store_->generation() : 0; }
  std::string ledger_json() const { return ledger_ ? ledger_->json_lines() : std::string(); }
  model::ModelParameters personal_model() const { return personal_state_->load_personal_model(); }
  model::ModelParameters personal_tensors() const { return personal_state_->load(); }
  void on_state_change(std::function<void(std::uint64_t)> callback) {
    if (store_) store_->on_change(std::move(callback));
  }

  void on_event(std::function<void(const ClientEvent&)> cb) { callback_ = std::move(cb); }

  // Sessions one after another: a round per session, reconnecting with backoff when one fails.
  RunSummary run() {
    RunSummary summary;
    Backoff backoff(config_.backoff_initial, config_.backoff_max, random_);
    auto last_contact = Clock::now();
    revocations_at_start_ = consent_->revocations();
    {
      std::lock_guard lock(mutex_);
      running_ = true;
    }
    struct NotRunning {
      std::atomic<bool>& running;
      ~NotRunning() { running = false; }
    } not_running{running_};
    while (!stopped_) {
      if (revoked_during_run()) return consent_revoked(summary);
      if (!covers(consent_->record(), needed_)) {
        emit({ClientEventKind::kAwaitingConsent, 0, "the person has not granted consent for " +
                                                        consent_scope_names(needed_).front() + "; nothing is sent"});
        if (!consent_->wait_until_granted(needed_)) break;
        continue;
      }
      if (const auto why = ineligible()) {
        if (*why != last_ineligible_) emit({ClientEventKind::kIneligible, 0, *why});
        last_ineligible_ = *why;
        sleep_for(config_.eligibility_poll);
        continue;
      }
      last_ineligible_.clear();
      emit({ClientEventKind::kConnecting, 0, config_.host + ":" + std::to_string(config_.port)});
      SessionResult r = run_session();
      limits_.traffic().add(r.bytes, DailyTraffic::Clock::now());
      if (revoked_during_run()) return consent_revoked(summary);
      if (r.reached) last_contact = Clock::now();
      if (r.contributed) ++contributed_;
      summary.rounds_contributed = contributed_;
      // A round this client had its task for has ended for it, however it ended (completed, abandoned, or the
      // session lost mid-round).
      if (r.had_task && r.outcome != SessionEnd::kFinished && config_.max_rounds > 0 &&
          ++rounds_taken_part_ >= config_.max_rounds) {
        emit({ClientEventKind::kFinished, 0, "took part in client.max_rounds rounds"});
        return summary;
      }
      if (r.outcome == SessionEnd::kFinished) {
        summary.finished = true;
        emit({ClientEventKind::kFinished, 0, r.message});
        return summary;
      }
      if (r.outcome != SessionEnd::kDisconnected) {
        backoff.reset();
        if (r.outcome == SessionEnd::kRetryLater) sleep_for(r.retry_delay);
        continue;
      }
      if (config_.give_up_after.count() > 0 && Clock::now() - last_contact > config_.give_up_after) {
        throw Error("gave up after connection.give_up_after_s without reaching the aggregator at " + config_.host +
                    ":" + std::to_string(config_.port) + "; last error: " + r.message);
      }
      const auto wait = backoff.next();
      emit({ClientEventKind::kConnectFailed, 0, r.message, static_cast<double>(wait.count())});
      sleep_for(wait);
    }
    summary.rounds_contributed = contributed_;
    return summary;
  }

  void stop() {
    stopped_ = true;
    consent_->interrupt();
    {
      std::lock_guard lock(mutex_);
      if (training_) training_->stop("the client is stopping");
      if (io_) asio::post(*io_, [this] { if (link_) link_->abort(); });
    }
    wakeup_.notify_all();
  }

 private:
  void emit(const ClientEvent& e) const {
    if (callback_) callback_(e);
  }

  void sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    const std::uint64_t seen = eligibility_changes_;
    wakeup_.wait_for(lock, d, [&] { return stopped_.load() || revoked_during_run() || eligibility_changes_ != seen; });
  }

  // The app's check, or the daily byte cap reached.
  std::optional<std::string> ineligible() {
    if (auto why = limits_.traffic().refuses(config_.limits.bytes_per_day, 0, DailyTraffic::Clock::now())) return why;
    EligibilityCheck check;
    {
      std::lock_guard lock(mutex_);
      check = eligibility_;
    }
    return check ? check() : std::nullopt;
  }

  // A new training run's control, stopped at once when the client is already stopping or consent is gone.
  std::shared_ptr<TrainingControl> start_training() {
    std::lock_guard lock(mutex_);
    training_ = std::make_shared<TrainingControl>(eligibility_);
    if (stopped_) training_->stop("the client is stopping");
    if (!covers(consent_->record(), needed_)) training_->stop("the person revoked consent");
    return training_;
  }

  bool revoked_during_run() const { return consent_->revocations() != revocations_at_start_; }

  RunSummary consent_revoked(RunSummary summary) {
    emit({ClientEventKind::kConsentRevoked, 0, "the person revoked consent: nothing more is sent"});
    summary.rounds_contributed = contributed_;
    summary.consent_revoked = true;
    return summary;
  }

  void open_state_store() {
    if (!config_.state_key) {
      throw Error("the state directory " + config_.state_dir.string() + " needs a state key to seal it "
                  "(ClientConfig::state_key; sotto-client: state.key_file)");
    }
    StateKey key;
    std::copy(config_.state_key->begin(), config_.state_key->end(), key.begin());
    OPENSSL_cleanse(config_.state_key->data(), config_.state_key->size());
    config_.state_key.reset();
    store_.emplace(config_.state_dir, key, config_.state_min_generation);
  }


  // One session on its own event loop, so that stop() can reach it.
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
    if (failure) std::rethrow_exception(failure);
    return result;
  }

  // Connect, check in, and the round; what fails here ends the session, and only FatalError ends the run.
  asio::awaitable<void> session(asio::io_context& io, SessionResult& result) {
    AggregatorLink link(io, ssl_, config_, *consent_, needed_);
    link_ = &link;
    struct Unset {
      AggregatorLink*& link;
      ~Unset() { link = nullptr; }
    } unset{link_};
    if (stopped_) co_return;  // stop() came before this session could be reached: nothing to abort
    std::string step;
    try {
      co_await link.connect(step);
      result.reached = true;
      auto task = co_await check_in(link, step, result);
      if (task) co_await RoundDriver(driver_context(), link).run(std::move(*task), result, step);
    } catch (const FatalError&) {
      throw;
    } catch (const StateError&) {
      throw;  // the device's own state is at fault: retrying the round cannot mend it
    } catch (const Error& e) {
      // The aggregator said something this client cannot use: drop the connection and try again later.
      spdlog::warn("{}: {}", step, e.what());
      result.outcome = SessionEnd::kDisconnected;
      result.message = step + ": " + e.what();
    } catch (const boost::system::system_error& e) {
      result.outcome = SessionEnd::kDisconnected;
      result.message = step + ": " + (link.timed_out() ? std::string("timed out") : e.code().message());
      if (step == "TLS handshake" && !link.timed_out()) {
        spdlog::warn("TLS handshake with {}:{} failed: {} (check server.ca_file, server.server_name and auth)",
                     config_.host, config_.port, e.code().message());
      }
    }
    result.bytes = link.bytes_moved();  // however the session ended, for limits.bytes_per_day
  }

  // Hello, admission, then the task and its model. Returns the task, or nothing when the session ended before it.
  asio::awaitable<std::optional<round::Task>> check_in(AggregatorLink& link, std::string& step, SessionResult& result) {
    step = "check-in";
    v1::Envelope hello;
    hello.mutable_hello()->set_client_id(config_.client_id);
    hello.mutable_hello()->set_auth_token(config_.auth_token);
    hello.mutable_hello()->add_capabilities("fedavg");
    hello.mutable_hello()->add_capabilities(round::kAccuracyHistogramCapability);
    hello.mutable_hello()->add_capabilities(round::kNoisedAccuracyHistogramCapability);
    hello.mutable_hello()->set_max_clip_norm(config_.privacy.max_clip_norm);
    co_await link.write(std::move(hello));

    v1::Envelope env;
    co_await link.read(env, config_.connect_timeout);
    if (ends_session(env, result, emitter())) co_return std::nullopt;
    if (!env.has_admit()) throw Error("aggregator answered hello with " + net::body_name(env) + ", expected admit");
    emit({ClientEventKind::kAdmitted, env.admit().round_id(), ""});

    step = "waiting for the task";
    co_await link.read(env, config_.wait_timeout);
    if (ends_session(env, result, emitter())) co_return std::nullopt;
    if (!env.has_task()) throw Error("aggregator sent " + net::body_name(env) + " where a task was expected");
    const v1::TaskAssignment task = env.task();
    result.task_arrived = Clock::now();
    if (auto declined = limits_.check(config_.limits, task.model().total_bytes(), link.bytes_moved())) {
      decline(task.round_id(), *declined, link, result);
      co_return std::nullopt;
    }
    limits_.taken();
    codec::ModelAssembler assembler(task.model(), config_.max_model_bytes);
    step = "receiving the model";
    while (!assembler.complete()) {
      co_await link.read(env, config_.io_timeout);
      if (ends_session(env, result, emitter())) co_return std::nullopt;
      if (!env.has_chunk()) throw Error("aggregator sent " + net::body_name(env) + " in the middle of the model");
      if (auto err = assembler.accept(env.chunk())) throw Error("model stream from the aggregator: " + *err);
    }
    emit({ClientEventKind::kTaskReceived, task.round_id(), ""});
    result.had_task = true;
    vanish_if(config_, "task");
    co_return round::task_from_proto(task, assembler.take());
  }

  // Leaves the round before receiving its model (round_limits.h says when it asks again and what is recorded).
  void decline(std::uint64_t round_id, const RoundLimits::Declined& declined, const AggregatorLink& link,
               SessionResult& result) {
    const std::string message = "round " + std::to_string(round_id) + " declined: " + declined.why;
    spdlog::info("{}", message);
    const RoundLimits::AfterDecline next = limits_.declined(declined, config_.eligibility_poll);
    if (ledger_ && next.record) {
      consent_->while_granted([&] {
        LedgerEntry entry{round_id, "abandoned", 0, link.bytes_sent(), link.bytes_received()};
        entry.reason = message;
        ledger_->append(entry);
      });
    }
    emit({ClientEventKind::kRoundAbandoned, round_id, message});
    result.outcome = SessionEnd::kRetryLater;
    result.retry_delay = next.wait;
    result.message = message;
  }

  RoundDriverContext driver_context() {
    return {config_,        trainer_.get(), contribution_, random_,    ledger_ ? &*ledger_ : nullptr, *consent_,
            privacy_spent_, *personal_state_, emitter(),  [this] { return start_training(); },
            forget_personal_model_};
  }

  std::function<void(const ClientEvent&)> emitter() {
    return [this](const ClientEvent& e) { emit(e); };
  }

  ClientConfig config_;
  std::shared_ptr<Trainer> trainer_;
  std::optional<std::vector<std::uint32_t>> contribution_;
  ConsentScope needed_;  // what this client's work needs the person's consent for
  asio::ssl::context ssl_;
  std::optional<StateStore> store_;
  std::unique_ptr<ConsentGate> consent_;
  std::uint64_t revocations_at_start_ = 0;
  EligibilityCheck eligibility_;                // under mutex_
  std::shared_ptr<TrainingControl> training_;  // the latest training run's, under mutex_
  std::string last_ineligible_;
  std::uint64_t eligibility_changes_ = 0;  // under mutex_: wakes an ineligible (or backing-off) client at once
  std::optional<Ledger> ledger_;
  std::optional<PersonalState> personal_state_;  // the model's personal tensors (plan.personal), in the store
  std::vector<double> privacy_spent_;  // the device's own accountant, from the ledger
  RoundLimits limits_;                 // the app's caps on a round, and the day's traffic
  std::atomic<bool> running_{false};   // run() is under way: the limits are fixed
  std::atomic<bool> forget_personal_model_{false};  // an opt-out since the trainer's last fit()
  round::SystemRandom random_;  // the quantizer's rounding coins, the SecAgg keys' and the backoff's jitter
  std::function<void(const ClientEvent&)> callback_;
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  std::condition_variable wakeup_;
  asio::io_context* io_ = nullptr;
  AggregatorLink* link_ = nullptr;  // the session's, on its event loop
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
void Client::cancel() {
  impl_->cancel();
}
void Client::set_limits(const DeviceLimits& limits) {
  impl_->set_limits(limits);
}
void Client::set_eligibility(EligibilityCheck check) {
  impl_->set_eligibility(std::move(check));
}
void Client::eligibility_changed() {
  impl_->eligibility_changed();
}
void Client::set_consent(bool granted, ConsentScope scope, OnRevoke on_revoke) {
  impl_->set_consent(granted, scope, on_revoke);
}
ConsentRecord Client::consent() const {
  return impl_->consent();
}
std::uint64_t Client::state_generation() const {
  return impl_->state_generation();
}
std::string Client::ledger_json() const {
  return impl_->ledger_json();
}
model::ModelParameters Client::personal_model() const {
  return impl_->personal_model();
}
model::ModelParameters Client::personal_tensors() const {
  return impl_->personal_tensors();
}
void Client::on_state_change(std::function<void(std::uint64_t)> callback) {
  impl_->on_state_change(std::move(callback));
}

}  // namespace sotto::client
