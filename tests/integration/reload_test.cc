// Rotation without a restart, against the real sotto-aggregator: the operator edits the config and sends SIGHUP.
// A client token removed from it is refused at the next hello; a new server certificate (from another CA) is what
// the next handshake presents, so a client that trusts only the old CA fails it and one that trusts the new CA
// completes it, on the operators' HTTPS endpoint as on the clients' port; a reload that cannot be read keeps what
// was there; a CRL put in the config refuses the client certificate it revokes at the next handshake. The daemon
// keeps running throughout.
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

// Client i of `pki` presents its certificate and says hello with no token: true when the aggregator answers with a
// message (it accepted the certificate), false when the connection fails (TLS 1.3 reports a refused client
// certificate after the client's handshake, at its first read).
bool certificate_accepted(std::uint16_t port, const Pki& pki, int i) {
  ProbeOptions o;
  o.port = port;
  o.ca_file = pki.ca();
  o.cert_file = pki.client_cert(i);
  o.key_file = pki.client_key(i);
  Probe probe(o);
  if (!probe.handshake().empty()) return false;
  if (!probe.write_envelope(hello_envelope("client-" + std::to_string(i)))) return false;
  const auto answer = probe.read(10s);
  return answer.kind == ReadOutcome::Kind::kEnvelope && !answer.envelope.has_error();
}

// A CRL from the PKI's CA revoking client i's certificate (openssl ca with a throw-away database in `dir`).
fs::path revoke_client(const Pki& pki, int i, const fs::path& dir) {
  fs::create_directories(dir);
  write_file(dir / "index.txt", "");
  write_file(dir / "crlnumber", "01\n");
  write_file(dir / "ca.cnf", "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = " + (dir / "index.txt").string() +
                                 "\ncrlnumber = " + (dir / "crlnumber").string() +
                                 "\ndefault_md = sha256\ndefault_crl_days = 30\n");
  const std::string ca = " -config '" + (dir / "ca.cnf").string() + "' -keyfile '" + (pki.dir / "ca.key").string() +
                         "' -cert '" + pki.ca().string() + "' -batch";
  const fs::path crl = dir / "crl.pem";
  const std::string command = "openssl ca" + ca + " -revoke '" + pki.client_cert(i).string() + "' >/dev/null 2>&1 && " +
                              "openssl ca" + ca + " -gencrl -out '" + crl.string() + "' >/dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  return crl;
}

}  // namespace

TEST_CASE("SIGHUP reloads the client tokens and the server certificate for new connections without a restart",
          "[integration][reload][http]") {
  TempDir dir("reload");
  const Pki old_pki = make_pki(dir / "pki-old", 1);
  const Pki new_pki = make_pki(dir / "pki-new", 1);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), old_pki, 1, 5);  // never fills: the daemon stays up
  agg.checkin_window_s = 600;
  agg.client_tokens = {{"client-a", kTokenA}, {"client-b", kTokenB}};
  agg.extra_toml = "[http]\nenabled = true\nport = 0\ntls = true\n";  // the operators' HTTPS endpoint rotates too
  const fs::path config = dir / "aggregator.toml";
  write_aggregator_config(config, agg);
  auto aggregator = start_aggregator(config, dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  const auto http_port = wait_for_http_port(agg.state_dir, 60s);
  REQUIRE(wait_until([&] { return aggregator->log_contains("ready:"); }, 60s));
  CHECK(handshake_error(http_port, old_pki.ca()).empty());

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
  CHECK_FALSE(handshake_error(http_port, old_pki.ca()).empty());
  CHECK(handshake_error(http_port, new_pki.ca()).empty());
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

TEST_CASE("SIGHUP with a CRL in the config refuses the client certificate it revokes and no other",
          "[integration][reload]") {
  TempDir dir("reload-crl");
  const Pki pki = make_pki(dir / "pki", 2);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), pki, 1, 5);  // never fills: the daemon stays up
  agg.checkin_window_s = 600;
  const fs::path config = dir / "aggregator.toml";
  write_aggregator_config(config, agg);
  auto aggregator = start_aggregator(config, dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  REQUIRE(wait_until([&] { return aggregator->log_contains("ready:"); }, 60s));
  CHECK(certificate_accepted(port, pki, 2));

  agg.server_toml = "crl_file = \"" + revoke_client(pki, 2, dir / "crl").string() + "\"\n";
  write_aggregator_config(config, agg);
  aggregator->kill(SIGHUP);
  REQUIRE(wait_until([&] { return aggregator->log_contains("the CRL"); }, 10s));
  CHECK_FALSE(certificate_accepted(port, pki, 2));
  CHECK(certificate_accepted(port, pki, 1));
  CHECK(aggregator->running());
}

}  // namespace sotto::test
