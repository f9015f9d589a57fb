// The app's controls over the client library — the person's consent, eligibility, cancel() — enforced at the socket
// and between batches: the app's own Client (in this process, as an app embeds it) talks to the real
// sotto-aggregator over mutual TLS through a TcpProxy that logs every connection and every read of either side's
// bytes in order with the test's own markers (app_harness.h).
#include <catch2/catch.hpp>

#include "client/consent_gate.h"
#include "client/round_driver.h"
#include "client/state_store.h"
#include "tests/integration/app_harness.h"

using namespace sotto;
using namespace sotto::test;
using namespace sotto::test::app;

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
