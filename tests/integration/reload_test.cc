// Rotation without a restart, against the real sotto-aggregator: the operator edits the config and sends SIGHUP.
// A client token removed from it is refused at the next hello; a new server certificate (from another CA) is what
// the next handshake presents, so a client that trusts only the old CA fails it and one that trusts the new CA
// completes it; a reload that cannot be read keeps what was there. The daemon keeps running throughout.
#include <catch2/catch.hpp>
#include <signal.h>

#include "tests/support/test_support.h"

namespace sotto::test {

namespace {

const std::string kTokenA = "token-of-client-a-0123456789";
const std::string kTokenB = "token-of-client-b-0123456789";

// A hello with `token` for `client_id` on a fresh TLS connection trusting `ca`: the aggregator's first answer.
ReadOutcome hello(std::uint16_t port, const fs::path& ca, const std::string& client_id, const std::string& token) {
  ProbeOptions o;
  o.port = port;
  o.ca_file = ca;
  Probe probe(o);
  const std::string handshake = probe.handshake();
  INFO("handshake: " << handshake);
  REQUIRE(handshake.empty());
  REQUIRE(probe.write_envelope(hello_envelope(client_id, token)));
  return probe.read(10s);
}

std::string handshake_error(std::uint16_t port, const fs::path& ca) {
  ProbeOptions o;
  o.port = port;
  o.ca_file = ca;
  Probe probe(o);
  return probe.handshake();
}

}  // namespace

TEST_CASE("SIGHUP reloads the client tokens and the server certificate for new connections without a restart",
          "[integration][reload]") {
  TempDir dir("reload");
  const Pki old_pki = make_pki(dir / "pki-old", 1);
  const Pki new_pki = make_pki(dir / "pki-new", 1);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), old_pki, 1, 5);  // never fills: the daemon stays up
  agg.checkin_window_s = 600;
  agg.client_tokens = {{"client-a", kTokenA}, {"client-b", kTokenB}};
  const fs::path config = dir / "aggregator.toml";
  write_aggregator_config(config, agg);
  auto aggregator = start_aggregator(config, dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  REQUIRE(wait_until([&] { return aggregator->log_contains("ready:"); }, 60s));

  const auto b_before = hello(port, old_pki.ca(), "client-b", kTokenB);
  INFO("client-b before the reload: " << b_before.describe());
  CHECK_FALSE(b_before.is_error(v1::ERROR_CODE_UNAUTHENTICATED));

  // client-b's token removed, the server certificate and key from another CA.
  agg.client_tokens.erase("client-b");
  agg.pki = new_pki;
  write_aggregator_config(config, agg);
  aggregator->kill(SIGHUP);
  REQUIRE(wait_until([&] { return aggregator->log_contains("SIGHUP: reloaded"); }, 10s));

  CHECK_FALSE(handshake_error(port, old_pki.ca()).empty());  // the old CA no longer vouches for the server
  const auto b_after = hello(port, new_pki.ca(), "client-b", kTokenB);
  INFO("client-b after the reload: " << b_after.describe());
  CHECK(b_after.is_error(v1::ERROR_CODE_UNAUTHENTICATED));
  const auto a_after = hello(port, new_pki.ca(), "client-a", kTokenA);
  INFO("client-a after the reload: " << a_after.describe());
  CHECK_FALSE(a_after.is_error(v1::ERROR_CODE_UNAUTHENTICATED));

  // A config that does not load: an error in the log, and nothing changes.
  write_file(config, "[server]\nport = \"not a number\"\n");
  aggregator->kill(SIGHUP);
  REQUIRE(wait_until([&] { return aggregator->log_contains("SIGHUP: reload failed"); }, 10s));
  CHECK(handshake_error(port, new_pki.ca()).empty());
  CHECK(aggregator->running());
  aggregator->kill(SIGTERM);
  CHECK(aggregator->wait_for_exit(30s) == 0);
}

}  // namespace sotto::test
