// What the app-control integration tests share (app_controls_test.cc, app_limits_test.cc): the app's own trainers,
// its event log, and a real sotto-aggregator behind a TcpProxy for the app's in-process Client over mutual TLS.
#pragma once

#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "client/ledger.h"
#include "common/crypto/random.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"

namespace sotto::test::app {

using namespace std::chrono_literals;
using Seen = TcpProxy::Seen;

// The app's training: a small step away from the global model. Its `hold_round`th fit blocks until released, as a
// long training run would, and says when it has started.
class HeldTrainer : public client::Trainer {
 public:
  explicit HeldTrainer(int hold_round) : hold_round_(hold_round) {}

  client::FitResult fit(const model::ModelParameters& global, const ml::TrainingPlan&,
                        client::TrainingControl&) override {
    std::unique_lock lock(mutex_);
    if (++fits_ == hold_round_) {
      changed_.notify_all();
      changed_.wait(lock, [&] { return released_; });
    }
    model::ModelParameters local = global;
    for (auto& tensor : local.mutable_tensors()) {
      if (tensor.dtype != model::DType::kFloat32) continue;
      for (float& v : tensor.as_mutable<float>()) v += 0.001f;
    }
    return {std::move(local), {20, 1, 0.5, 0.5, 0, 0}};
  }
  void wait_until_held() {
    std::unique_lock lock(mutex_);
    REQUIRE(changed_.wait_for(lock, 120s, [&] { return fits_ >= hold_round_; }));
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  const int hold_round_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int fits_ = 0;
  bool released_ = false;
};

// The app's training in batches of ~10 ms, each only when the control says so; it tells the test when a run has
// started `signal_at` batches.
class BatchTrainer : public client::Trainer {
 public:
  BatchTrainer(int batches, int signal_at) : batches_(batches), signal_at_(signal_at) {}

  client::FitResult fit(const model::ModelParameters& global, const ml::TrainingPlan&,
                        client::TrainingControl& control) override {
    for (int b = 0; b < batches_; ++b) {
      if (!control.next_batch()) throw client::TrainingStopped(*control.stop_reason());
      if (b + 1 == signal_at_) {
        std::lock_guard lock(mutex_);
        running_ = &control;
        changed_.notify_all();
      }
      std::this_thread::sleep_for(10ms);
    }
    return {global, {20, static_cast<std::uint64_t>(batches_), 0.5, 0.5, 0, 0}};
  }
  // The control of the first run that reached signal_at batches.
  client::TrainingControl& wait_for_run() {
    std::unique_lock lock(mutex_);
    REQUIRE(changed_.wait_for(lock, 120s, [&] { return running_ != nullptr; }));
    return *running_;
  }

 private:
  const int batches_, signal_at_;
  std::mutex mutex_;
  std::condition_variable changed_;
  client::TrainingControl* running_ = nullptr;
};

// The client's events, waited for from the test's thread.
class EventLog {
 public:
  void add(const client::ClientEvent& e) {
    std::lock_guard lock(mutex_);
    events_.push_back(e);
    changed_.notify_all();
  }
  // The first event of `kind` (for `round`, when not 0).
  client::ClientEvent wait_for(client::ClientEventKind kind, std::uint64_t round = 0) {
    std::unique_lock lock(mutex_);
    const auto match = [&](const auto& e) { return e.kind == kind && (round == 0 || e.round_id == round); };
    REQUIRE(changed_.wait_for(lock, 120s, [&] { return std::any_of(events_.begin(), events_.end(), match); }));
    return *std::find_if(events_.begin(), events_.end(), match);
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<client::ClientEvent> events_;
};

inline client::ClientConfig app_config(const Pki& pki, std::uint16_t port, const fs::path& state_dir,
                                const std::array<std::uint8_t, 32>& key) {
  client::ClientConfig c;
  c.client_id = "client-1";
  c.port = port;
  c.ca_file = pki.ca();
  c.cert_file = pki.client_cert(1);
  c.key_file = pki.client_key(1);
  c.backoff_initial = 100ms;
  c.backoff_max = 500ms;
  c.give_up_after = 60s;
  c.state_dir = state_dir;
  c.state_key = key;
  c.save_local_models = true;
  return c;
}

inline std::array<std::uint8_t, 32> new_key() {
  std::array<std::uint8_t, 32> key{};
  crypto::random_bytes(key);
  return key;
}

inline AggregatorOptions with_extra_toml(AggregatorOptions options, const std::string& extra_toml) {
  options.extra_toml = extra_toml;
  return options;
}

// A real aggregator for one client, `rounds` rounds, behind a TcpProxy; the app's state directory and key.
struct ProxiedAggregator {
  ProxiedAggregator(const std::string& tag, std::uint64_t rounds, const std::string& extra_toml = "")
      : dir(tag),
        pki(make_pki(dir / "pki", 1)),
        options(with_extra_toml(fixed_cohort_options(dir.path(), pki, rounds, 1), extra_toml)),
        aggregator(start_aggregator(write_aggregator_config(dir / "aggregator.toml", options), dir / "aggregator.log")),
        proxy(wait_for_port(options.state_dir, 60s, aggregator.get())) {}

  client::ClientConfig app_config() const { return app::app_config(pki, proxy.port(), state, key); }

  TempDir dir;
  Pki pki;
  AggregatorOptions options;
  std::unique_ptr<Process> aggregator;
  TcpProxy proxy;
  fs::path state = dir / "state";
  std::array<std::uint8_t, 32> key = new_key();
};

inline bool any_of(const std::vector<TcpProxy::Event>& events, Seen what) {
  return std::any_of(events.begin(), events.end(), [&](const auto& e) { return e.what == what; });
}

// The app's Client running on its own thread with the person's consent, its events logged; stop() ends it.
struct RunningApp {
  RunningApp(client::ClientConfig config, std::shared_ptr<client::Trainer> trainer)
      : app(std::move(config), std::move(trainer)) {
    app.on_event([this](const client::ClientEvent& e) { log.add(e); });
    app.set_consent(true, client::ConsentScope::kTraining);
    runner = std::thread([this] { app.run(); });
  }
  ~RunningApp() { stop(); }
  void stop() {
    if (!runner.joinable()) return;
    app.stop();
    runner.join();
  }
  std::vector<client::LedgerEntry> ledger() const { return client::parse_ledger_lines(app.ledger_json()); }

  client::Client app;
  EventLog log;
  std::thread runner;
};

// fashion_linear's weights are 7,850 float32s: 31,400 bytes.
inline const std::string kLinearModel = "[model]\narchitecture = \"fashion_linear\"\n";

}  // namespace sotto::test::app
