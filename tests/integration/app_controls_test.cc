// The app's controls over the client library — the person's consent, eligibility, cancel(), its caps — enforced at
// the socket and between batches, and the ledger's byte counts against the socket's: the app's own Client (in this
// process, as an app embeds it) talks to the real sotto-aggregator over mutual TLS through a TcpProxy that logs
// every connection and every read of either side's bytes in order with the test's own markers.
#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "client/consent_gate.h"
#include "client/ledger.h"
#include "client/round_driver.h"
#include "client/state_store.h"
#include "common/crypto/random.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"

using namespace sotto;
using namespace sotto::test;
using namespace std::chrono_literals;
using Seen = TcpProxy::Seen;

namespace {

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

client::ClientConfig app_config(const Pki& pki, std::uint16_t port, const fs::path& state_dir,
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

std::array<std::uint8_t, 32> new_key() {
  std::array<std::uint8_t, 32> key{};
  crypto::random_bytes(key);
  return key;
}

AggregatorOptions with_extra_toml(AggregatorOptions options, const std::string& extra_toml) {
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

  client::ClientConfig app_config() const { return ::app_config(pki, proxy.port(), state, key); }

  TempDir dir;
  Pki pki;
  AggregatorOptions options;
  std::unique_ptr<Process> aggregator;
  TcpProxy proxy;
  fs::path state = dir / "state";
  std::array<std::uint8_t, 32> key = new_key();
};

bool any_of(const std::vector<TcpProxy::Event>& events, Seen what) {
  return std::any_of(events.begin(), events.end(), [&](const auto& e) { return e.what == what; });
}

}  // namespace

TEST_CASE("consent: no connection before opt-in and not a byte after opt-out returns") {
  ProxiedAggregator run("consent", 5);
  const fs::path& state = run.state;
  const auto& key = run.key;
  TcpProxy& proxy = run.proxy;
  auto trainer = std::make_shared<HeldTrainer>(2);
  auto owned = std::make_unique<client::Client>(run.app_config(), trainer);
  client::Client& app = *owned;
  EventLog log;
  app.on_event([&](const client::ClientEvent& e) { log.add(e); });
  std::uint64_t kept_generation = 0;
  app.on_state_change([&](std::uint64_t g) { kept_generation = g; });
  client::RunSummary summary;
  std::thread runner([&] { summary = app.run(); });

  // Before opt-in: the client waits and opens no connection, however long it is given.
  log.wait_for(client::ClientEventKind::kAwaitingConsent);
  std::this_thread::sleep_for(500ms);
  proxy.mark("granting");
  CHECK(proxy.connections_accepted() == 0);
  app.set_consent(true, client::ConsentScope::kTraining);
  log.wait_for(client::ClientEventKind::kRoundCompleted, 1);
  CHECK(fs::exists(state / client::local_model_file_name(1)));
  CHECK(fs::exists(state / "ledger.sealed"));

  // Opt-out while round 2 trains: the connection is cut before set_consent returns, so nothing the client does
  // afterwards (finishing the training, trying to upload) reaches the socket.
  trainer->wait_until_held();
  app.set_consent(false, client::ConsentScope::kAll, client::OnRevoke::kDeleteLedger);
  proxy.mark("revoked");
  trainer->release();
  runner.join();
  CHECK(summary.consent_revoked);
  std::this_thread::sleep_for(500ms);  // a client that ignored the revocation would reconnect or upload now
  const auto after = proxy.events_after("revoked");
  CHECK_FALSE(any_of(after, Seen::kClientBytes));
  CHECK_FALSE(any_of(after, Seen::kAccepted));
  CHECK(any_of(proxy.events(), Seen::kClientClosed));

  // What the device kept is gone, and the revocation is on record, sealed.
  CHECK_FALSE(fs::exists(state / client::local_model_file_name(1)));
  CHECK_FALSE(fs::exists(state / client::local_model_file_name(2)));
  CHECK_FALSE(fs::exists(state / "ledger.sealed"));
  CHECK(app.consent().granted == false);
  CHECK(kept_generation == app.state_generation());
  owned.reset();  // the app lets its state directory go
  client::StateKey store_key;
  std::copy(key.begin(), key.end(), store_key.begin());
  {
    client::StateStore store(state, store_key, kept_generation);
    const auto record = client::ConsentGate(&store).record();
    CHECK_FALSE(record.granted);
    CHECK(client::Ledger(store).entries().empty());
    CHECK(record.unix_time > 0);
  }

  // The aggregator had round 1 from this client and not round 2's update.
  const fs::path rounds_file = run.options.state_dir / "rounds.jsonl";
  REQUIRE(wait_until([&] { return read_jsonl(rounds_file).size() >= 2; }, 60s));
  const auto rounds = read_jsonl(rounds_file);
  CHECK(rounds[0]["status"] == "completed");
  CHECK(rounds[1]["round"] == 2);
  CHECK(rounds[1]["status"] == "abandoned");
}

TEST_CASE("consent: the scope is enforced and a recorded grant survives a restart of the app") {
  ProxiedAggregator run("consent-scope", 1);
  auto& proxy = run.proxy;
  std::uint64_t kept = 0;
  {
    // Consent to analytics only: a training client stays off the network.
    client::Client app(run.app_config(), std::make_shared<HeldTrainer>(0));
    app.on_state_change([&](std::uint64_t g) { kept = g; });
    EventLog log;
    app.on_event([&](const client::ClientEvent& e) { log.add(e); });
    app.set_consent(true, client::ConsentScope::kAnalytics);
    std::thread runner([&] { app.run(); });
    log.wait_for(client::ClientEventKind::kAwaitingConsent);
    std::this_thread::sleep_for(300ms);
    app.stop();
    runner.join();
    CHECK(proxy.connections_accepted() == 0);
    app.set_consent(true, client::ConsentScope::kAll);
  }
  // A new Client on the same state (the app restarted) finds the grant and takes part at once.
  auto config = run.app_config();
  config.state_min_generation = kept;
  client::Client app(config, std::make_shared<HeldTrainer>(0));
  CHECK(app.consent().granted);
  CHECK(client::covers(app.consent(), client::ConsentScope::kTraining));
  const auto summary = app.run();
  CHECK(summary.finished);
  CHECK(summary.rounds_contributed == 1);
  CHECK(proxy.connections_accepted() >= 1);
  // Without the state key it does not open at all.
  auto keyless = run.app_config();
  keyless.state_dir = run.dir / "other-state";
  keyless.state_key.reset();
  CHECK_THROWS_WITH(client::Client(keyless, std::make_shared<HeldTrainer>(0)), Catch::Contains("needs a state key"));
}

TEST_CASE("cancel: no batch starts after cancel returns and the round is abandoned with the reason on record") {
  ProxiedAggregator run("cancel", 3);
  auto trainer = std::make_shared<BatchTrainer>(500, 3);
  client::Client app(run.app_config(), trainer);
  EventLog log;
  app.on_event([&](const client::ClientEvent& e) { log.add(e); });
  app.set_consent(true, client::ConsentScope::kTraining);
  std::thread runner([&] { app.run(); });

  client::TrainingControl& control = trainer->wait_for_run();
  app.cancel();
  const auto started = control.batches_started();
  const auto abandoned = log.wait_for(client::ClientEventKind::kRoundAbandoned);
  CHECK(control.batches_started() == started);
  CHECK(started < 500);
  CHECK_THAT(abandoned.message, Catch::Contains("cancelled by the app"));
  // The client goes on: it is back for the next round (and trains it fully, cancel applied to one run only).
  log.wait_for(client::ClientEventKind::kTaskReceived, abandoned.round_id + 1);
  app.stop();
  runner.join();
  const auto entries = client::parse_ledger_lines(app.ledger_json());
  REQUIRE_FALSE(entries.empty());
  CHECK(entries.front().outcome == "abandoned");
  CHECK(entries.front().reason == "cancelled by the app");
  CHECK(entries.front().round_id == abandoned.round_id);
}

TEST_CASE("eligibility: nothing is sent while the app says no and training stops at the batch it turns false") {
  ProxiedAggregator run("eligibility", 3);
  auto trainer = std::make_shared<BatchTrainer>(500, 3);
  auto config = run.app_config();
  config.eligibility_poll = 600s;  // only eligibility_changed() can wake it in this test
  client::Client app(config, trainer);
  EventLog log;
  app.on_event([&](const client::ClientEvent& e) { log.add(e); });
  app.set_consent(true, client::ConsentScope::kTraining);
  std::atomic<bool> charging{false};
  app.set_eligibility([&]() -> std::optional<std::string> {
    return charging ? std::nullopt : std::optional<std::string>("on battery");
  });
  std::thread runner([&] { app.run(); });

  CHECK(log.wait_for(client::ClientEventKind::kIneligible).message == "on battery");
  std::this_thread::sleep_for(300ms);
  CHECK(run.proxy.connections_accepted() == 0);
  charging = true;
  app.eligibility_changed();

  client::TrainingControl& control = trainer->wait_for_run();
  charging = false;  // unplugged mid-training
  const auto started = control.batches_started();
  const auto abandoned = log.wait_for(client::ClientEventKind::kRoundAbandoned);
  CHECK(control.batches_started() <= started + 1);  // a batch already past its check may still be counted
  CHECK_THAT(abandoned.message, Catch::Contains("no longer eligible: on battery"));
  app.stop();
  runner.join();
  CHECK(run.proxy.connections_accepted() == 1);  // ineligible again: it did not come back
  const auto entries = client::parse_ledger_lines(app.ledger_json());
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].reason == "the device is no longer eligible: on battery");
}

TEST_CASE("ledger: a contribution's bytes sent and received are those on the socket, TLS included") {
  ProxiedAggregator run("ledger-bytes", 1);
  client::Client app(run.app_config(), std::make_shared<HeldTrainer>(0));
  app.set_consent(true, client::ConsentScope::kTraining);
  REQUIRE(app.run().finished);
  const auto entries = client::parse_ledger_lines(app.ledger_json());
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].outcome == "completed");
  REQUIRE(run.proxy.connections_accepted() == 1);
  // The TcpProxy counts every byte relayed each way; the ledger's figures were taken as the round ended.
  CHECK(entries[0].bytes_sent == run.proxy.bytes_seen(Seen::kClientBytes, 1));
  CHECK(entries[0].bytes_received == run.proxy.bytes_seen(Seen::kServerBytes, 1));
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

TEST_CASE("limits: past the round's wall time no batch starts and the round is left, with the cap on record") {
  ProxiedAggregator run("limit-wall-time", 2);
  auto trainer = std::make_shared<BatchTrainer>(500, 1);
  auto config = run.app_config();
  config.limits.round_wall_time = 300ms;
  RunningApp app(config, trainer);
  client::TrainingControl& control = trainer->wait_for_run();
  CHECK_THROWS_WITH(app.app.set_limits({}), Catch::Contains("before run()"));
  const auto abandoned = app.log.wait_for(client::ClientEventKind::kRoundAbandoned);
  app.stop();
  CHECK(control.batches_started() < 500);  // 500 batches of 10 ms would take 5 s
  CHECK_THAT(abandoned.message, Catch::Contains("limits.round_wall_time_s (0.3 s)"));
  CHECK_NOTHROW(app.app.set_limits({}));  // run() has returned
  const auto entries = app.ledger();
  REQUIRE_FALSE(entries.empty());
  CHECK(entries.front().outcome == "abandoned");
  CHECK_THAT(entries.front().reason, Catch::Contains("limits.round_wall_time_s"));
}

// fashion_linear's weights are 7,850 float32s: 31,400 bytes.
const std::string kLinearModel = "[model]\narchitecture = \"fashion_linear\"\n";

TEST_CASE("limits: a round whose model is over the update buffer's cap is declined before the model is received") {
  ProxiedAggregator run("limit-update-bytes", 2, kLinearModel);
  auto config = run.app_config();
  config.limits.max_update_bytes = 30'000;
  config.eligibility_poll = 600s;
  RunningApp app(config, std::make_shared<HeldTrainer>(0));
  const auto declined = app.log.wait_for(client::ClientEventKind::kRoundAbandoned);
  app.stop();
  CHECK_THAT(declined.message,
             Catch::Contains("round 1 declined") && Catch::Contains("more than limits.max_update_bytes (30000)"));
  const auto entries = app.ledger();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].outcome == "abandoned");
  CHECK(entries[0].reason == declined.message);
  CHECK(entries[0].bytes_received < 31'400);  // the handshake and the task, not the model
  CHECK(run.proxy.connections_accepted() == 1);  // it waits eligibility_poll before asking again
}

TEST_CASE("limits: at the daily byte cap the device declines the round that would pass it") {
  ProxiedAggregator run("limit-bytes-per-day", 3, kLinearModel);
  auto config = run.app_config();
  // Room for one round (the model received and its update sent: ~63 kB, the handshakes besides), not for two.
  config.limits.bytes_per_day = 100'000;
  config.eligibility_poll = 600s;
  RunningApp app(config, std::make_shared<HeldTrainer>(0));
  app.log.wait_for(client::ClientEventKind::kRoundCompleted, 1);
  const auto declined = app.log.wait_for(client::ClientEventKind::kRoundAbandoned, 2);
  app.stop();
  CHECK_THAT(declined.message, Catch::Contains("round 2 declined") &&
                                   Catch::Contains("limits.bytes_per_day is 100000") &&
                                   Catch::Contains("in the last 24 hours"));
  const auto entries = app.ledger();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].outcome == "completed");
  CHECK(entries[1].outcome == "abandoned");
  const std::uint64_t used = entries[0].bytes_sent + entries[0].bytes_received;
  CHECK(used > 2 * 31'400);
  CHECK(used + entries[1].bytes_sent + entries[1].bytes_received + 2 * 31'400 > 100'000);
}
