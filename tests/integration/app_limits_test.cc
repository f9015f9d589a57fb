// The app's caps on what taking part may cost the device (DeviceLimits: wall time per round, the update buffer,
// bytes per day), the ledger's byte counts against the socket's, and what the trainer holds in memory after an
// opt-out; through the app's in-process Client and a real sotto-aggregator behind a TcpProxy (app_harness.h).
#include <catch2/catch.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/app_harness.h"

using namespace sotto;
using namespace sotto::test;
using namespace sotto::test::app;

TEST_CASE("ledger: a contribution's bytes sent and received are those on the socket, TLS included") {
  ProxiedAggregator run("ledger-bytes", 1);
  client::Client app(run.app_config(), std::make_shared<HeldTrainer>(0));
  app.set_consent(true, client::ConsentScope::kTraining);
  REQUIRE(app.run().finished);
  const auto entries = client::parse_ledger_lines(app.ledger_json());
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].outcome == "completed");
  REQUIRE(run.proxy.connections_accepted() == 1);
  // The TcpProxy counts every byte relayed each way; the ledger's figures were taken as the round ended, so a TLS
  // alert record (24 bytes: header, type, tag) that either side sends as it closes may come after them, no more.
  constexpr std::uint64_t kClosingAlert = 24;
  const std::uint64_t sent = run.proxy.bytes_seen(Seen::kClientBytes, 1);
  const std::uint64_t received = run.proxy.bytes_seen(Seen::kServerBytes, 1);
  CHECK(entries[0].bytes_sent <= sent);
  CHECK(sent - entries[0].bytes_sent <= kClosingAlert);
  CHECK(entries[0].bytes_received <= received);
  CHECK(received - entries[0].bytes_received <= kClosingAlert);
  // (Counted at the frames, the handshake and every record's 22 bytes of overhead would be missing.)
}

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

namespace {

// A trainer in the manner of Ditto: it keeps its personal model in memory between rounds and logs when the client
// restores it from the store, or tells it to forget it.
class KeepingTrainer : public client::Trainer {
 public:
  client::FitResult fit(const model::ModelParameters& global, const ml::TrainingPlan&,
                        client::TrainingControl&) override {
    std::lock_guard lock(mutex_);
    log_.push_back(held_ ? "fit holding" : "fit empty");
    held_ = global;
    client::FitResult result{global, {20, 1, 0.5, 0.5, 0, 0}};
    result.personal_model = global;
    return result;
  }
  void restore_personal_model(model::ModelParameters personal_model) override {
    std::lock_guard lock(mutex_);
    log_.push_back("restore");
    held_ = std::move(personal_model);
  }
  bool holds_personal_model() const override {
    std::lock_guard lock(mutex_);
    return held_.has_value();
  }
  void forget_personal_model() override {
    std::lock_guard lock(mutex_);
    log_.push_back("forget");
    held_.reset();
  }
  std::vector<std::string> log() const {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<model::ModelParameters> held_;
  std::vector<std::string> log_;
};

}  // namespace

TEST_CASE("personal model: read from the store once, and forgotten in memory too after an opt-out") {
  ProxiedAggregator run("personal-memory", 4, "[personalization]\nditto_lambda = 0.1\n");
  auto config = run.app_config();
  config.max_rounds = 2;
  std::uint64_t kept = 0;
  {
    auto trainer = std::make_shared<KeepingTrainer>();
    client::Client app(config, trainer);
    app.on_state_change([&](std::uint64_t g) { kept = g; });
    app.set_consent(true, client::ConsentScope::kTraining);
    app.run();  // rounds 1 and 2: the trainer holds its model from round 1 on, so nothing is read back
    CHECK(trainer->log() == std::vector<std::string>{"fit empty", "fit holding"});
    CHECK(app.personal_model().size() > 0);
    app.set_consent(false, client::ConsentScope::kAll);
    CHECK(app.personal_model().size() == 0);
    app.set_consent(true, client::ConsentScope::kTraining);
    app.run();  // round 3: the opt-out reaches the trainer's memory before it trains again
    CHECK(trainer->log() == std::vector<std::string>{"fit empty", "fit holding", "forget", "fit empty"});
  }
  config.state_min_generation = kept;
  auto trainer = std::make_shared<KeepingTrainer>();
  client::Client app(config, trainer);  // the app restarted: round 3's personal model comes back from the store
  REQUIRE(app.run().finished);
  CHECK(trainer->log() == std::vector<std::string>{"restore", "fit holding"});
}
