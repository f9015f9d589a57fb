// Transport security against a running aggregator: who gets in and who does not. A client that trusts another CA,
// or expects another host name, refuses the aggregator; the aggregator refuses plaintext, TLS 1.2, certificates
// from another CA, and certificate-less clients without their bound token (or with another id's) — while a
// certificate-less client with its bound token, and a client with a proper certificate, train together to the end.
#include <array>
#include <catch2/catch.hpp>
#include <cstring>
#include <set>

#include "common/net/frame.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr const char* kToken = "integration-test-token-0123456789";

std::string describe(const std::vector<ReadOutcome>& outcomes) {
  std::string out;
  for (const auto& o : outcomes) out += o.describe() + "\n";
  return out;
}

bool any_envelope(const std::vector<ReadOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    if (o.kind == ReadOutcome::Kind::kEnvelope) return true;
  }
  return false;
}

// True when `bytes` start with a complete Sotto frame holding an Envelope with a body.
bool holds_envelope(const std::string& bytes) {
  if (bytes.size() < net::kFrameHeaderBytes) return false;
  std::array<std::uint8_t, net::kFrameHeaderBytes> header{};
  std::memcpy(header.data(), bytes.data(), header.size());
  const std::uint32_t length = net::decode_frame_header(header);
  if (bytes.size() < net::kFrameHeaderBytes + length) return false;
  v1::Envelope env;
  return env.ParseFromString(bytes.substr(net::kFrameHeaderBytes, length)) &&
         env.body_case() != v1::Envelope::BODY_NOT_SET;
}

}  // namespace

// (Test names avoid ',' and ';': ctest registration splits on them.)
TEST_CASE("TLS: every wrong way in is refused while certificate and token clients are admitted",
          "[integration][tls]") {
  TempDir dir("tls");
  const Pki pki = make_pki(dir / "pki", 2);
  const Pki other = make_pki(dir / "other-pki", 1);  // an unrelated CA with its own client certificate

  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.client_tokens = {{"token-client", kToken}};
  agg.total_rounds = 1;
  agg.cohort_target = 2;  // client-2 (certificate) and token-client (token); no probe ever joins a round
  agg.cohort_min = 2;
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());

  ClientOptions base;
  base.port = port;
  base.ca_file = pki.ca();
  base.max_examples = 200;
  base.num_shards = 2;
  base.give_up_after_s = 2;
  base.save_local_models = false;

  // The real client, misconfigured, gives up (exit code 1) and says why. Both run while the probes below do.
  ClientOptions wrong_ca = base;
  wrong_ca.id = "client-1";
  wrong_ca.ca_file = other.ca();
  wrong_ca.cert_file = pki.client_cert(1);
  wrong_ca.key_file = pki.client_key(1);
  auto wrong_ca_client =
      start_client("wrong-ca-client", write_client_config(dir / "wrong-ca.toml", wrong_ca), dir / "wrong-ca.log");
  ClientOptions wrong_name = wrong_ca;
  wrong_name.ca_file = pki.ca();
  wrong_name.server_name = "wrong.example";
  auto wrong_name_client = start_client(
      "wrong-name-client", write_client_config(dir / "wrong-name.toml", wrong_name), dir / "wrong-name.log");

  ProbeOptions good;
  good.port = port;
  good.ca_file = pki.ca();
  good.cert_file = pki.client_cert(1);
  good.key_file = pki.client_key(1);

  {
    INFO("a probe trusting another CA rejects the aggregator's certificate");
    ProbeOptions o = good;
    o.ca_file = other.ca();
    Probe probe(o);
    const std::string error = probe.handshake();
    INFO("handshake: " << error);
    CHECK_FALSE(error.empty());
    CHECK(error.find("certificate verify failed") != std::string::npos);
  }
  {
    INFO("a probe expecting the host name wrong.example rejects the aggregator's certificate");
    ProbeOptions o = good;
    o.server_name = "wrong.example";
    Probe probe(o);
    const std::string error = probe.handshake();
    INFO("handshake: " << error);
    CHECK_FALSE(error.empty());
    CHECK(error.find("certificate verify failed") != std::string::npos);
  }
  {
    INFO("a plaintext TCP client sending a hello gets no envelope, and the connection is closed");
    ProbeOptions o = good;
    o.tls = false;
    Probe probe(o);
    REQUIRE(probe.write_raw(net::encode_frame(hello_envelope("client-1"))));
    REQUIRE(probe.wait_closed(10s));
    INFO("received " << probe.pending_bytes().size() << " bytes");
    CHECK_FALSE(holds_envelope(probe.pending_bytes()));
  }
  {
    INFO("a TLS 1.2-only client is refused");
    ProbeOptions o = good;
    o.tls12_only = true;
    Probe probe(o);
    const std::string error = probe.handshake();
    INFO("handshake: " << error);
    CHECK_FALSE(error.empty());
  }
  {
    INFO("a client certificate from another CA is refused at the handshake");
    ProbeOptions o = good;
    o.cert_file = other.client_cert(1);
    o.key_file = other.client_key(1);
    Probe probe(o);
    // With TLS 1.3 the client may finish its side of the handshake before the server has checked its certificate;
    // then the server's alert ends the connection on the first read. Either way no envelope ever comes back.
    const std::string error = probe.handshake();
    if (error.empty()) {
      probe.write_envelope(hello_envelope("client-1"));
      const auto outcomes = probe.read_until_closed(10s);
      INFO("received:\n" << describe(outcomes));
      CHECK_FALSE(any_envelope(outcomes));
      CHECK(outcomes.back().kind == ReadOutcome::Kind::kClosed);
    }
    CHECK(wait_until([&] { return aggregator->log_contains("TLS handshake refused"); }, 5s));
  }
  {
    INFO("no certificate and a wrong token: UNAUTHENTICATED");
    ProbeOptions o = good;
    o.cert_file.clear();
    o.key_file.clear();
    Probe probe(o);
    REQUIRE(probe.handshake().empty());
    REQUIRE(probe.write_envelope(hello_envelope("token-client", "not-the-token-0123456789")));
    const auto outcomes = probe.read_until_closed(10s);
    INFO("received:\n" << describe(outcomes));
    REQUIRE(outcomes.size() == 2);
    CHECK(outcomes[0].is_error(v1::ERROR_CODE_UNAUTHENTICATED));
    CHECK(outcomes[1].kind == ReadOutcome::Kind::kClosed);
  }
  {
    INFO("token-client's own token with an invented client id: UNAUTHENTICATED (a token admits only its ids)");
    ProbeOptions o = good;
    o.cert_file.clear();
    o.key_file.clear();
    Probe probe(o);
    REQUIRE(probe.handshake().empty());
    REQUIRE(probe.write_envelope(hello_envelope("sybil-1", kToken)));
    const auto outcomes = probe.read_until_closed(10s);
    INFO("received:\n" << describe(outcomes));
    REQUIRE(outcomes.size() == 2);
    CHECK(outcomes[0].is_error(v1::ERROR_CODE_UNAUTHENTICATED));
  }
  {
    INFO("no certificate and no token: UNAUTHENTICATED");
    ProbeOptions o = good;
    o.cert_file.clear();
    o.key_file.clear();
    Probe probe(o);
    REQUIRE(probe.handshake().empty());
    REQUIRE(probe.write_envelope(hello_envelope("token-client")));
    const auto outcomes = probe.read_until_closed(10s);
    INFO("received:\n" << describe(outcomes));
    REQUIRE(outcomes.size() == 2);
    CHECK(outcomes[0].is_error(v1::ERROR_CODE_UNAUTHENTICATED));
  }

  for (Process* p : {wrong_ca_client.get(), wrong_name_client.get()}) {
    const auto code = p->wait_for_exit(60s);
    const std::string log = p->log_text();
    INFO(p->name() << " log:\n" << log);
    REQUIRE(code.has_value());
    CHECK(*code != 0);
    CHECK(log.find("gave up after connection.give_up_after_s") != std::string::npos);
    CHECK(log.find("certificate verify failed") != std::string::npos);
  }
  REQUIRE(aggregator->running());

  // Admitted: a certificate-less client with a listed token, and client-2 with its certificate. They train the
  // one round together and finish.
  ClientOptions with_token = base;
  with_token.id = "token-client";
  with_token.token = kToken;
  with_token.shard_index = 0;
  with_token.give_up_after_s = 30;
  with_token.state_dir = dir / "token-client";
  auto token_client =
      start_client("token-client", write_client_config(dir / "token-client.toml", with_token), dir / "token-client.log");
  ClientOptions with_cert = base;
  with_cert.id = "client-2";
  with_cert.cert_file = pki.client_cert(2);
  with_cert.key_file = pki.client_key(2);
  with_cert.shard_index = 1;
  with_cert.give_up_after_s = 30;
  with_cert.state_dir = dir / "client-2";
  auto cert_client =
      start_client("client-2", write_client_config(dir / "client-2.toml", with_cert), dir / "client-2.log");

  for (Process* p : {token_client.get(), cert_client.get()}) {
    const auto code = p->wait_for_exit(120s);
    INFO(p->name() << " log:\n" << p->log_text());
    REQUIRE(code == 0);
    CHECK(p->log_contains("round 1: completed"));
  }
  REQUIRE(aggregator->wait_for_exit(30s) == 0);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 1);
  CHECK(rounds[0].at("status") == "completed");
  CHECK(rounds[0].at("survivors") == 2);
  std::set<std::string> participants;
  for (const auto& p : rounds[0].at("participants")) participants.insert(p.get<std::string>());
  CHECK(participants == std::set<std::string>{"client-2", "token-client"});
}

}  // namespace sotto::test
