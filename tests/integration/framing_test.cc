// Hostile and broken peers against a running aggregator: raw TLS connections that send truncated frames, absurd
// length prefixes, random bytes, envelopes with no (or an unknown) body, a wrong protocol version, messages out of
// order, or nothing at all. Each must be answered with an Error frame carrying the right code, or simply closed —
// and meanwhile two well-behaved sotto-client processes must complete their rounds as if nothing happened.
#include <catch2/catch.hpp>
#include <random>

#include "common/net/frame.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

// Reads until the aggregator closes the connection; requires the first frame to be an Error with `code` (or any
// code when `code` is unspecified) and nothing after it but the end of the connection.
void require_error_then_close(Probe& probe, v1::ErrorCode code, const std::string& message_part = "") {
  const auto outcomes = probe.read_until_closed(10s);
  std::string seen;
  for (const auto& o : outcomes) seen += o.describe() + "\n";
  INFO("received:\n" << seen);
  REQUIRE(outcomes.size() == 2);
  REQUIRE(outcomes[0].kind == ReadOutcome::Kind::kEnvelope);
  REQUIRE(outcomes[0].envelope.has_error());
  if (code != v1::ERROR_CODE_UNSPECIFIED) CHECK(v1::ErrorCode_Name(outcomes[0].envelope.error().code()) == v1::ErrorCode_Name(code));
  CHECK(outcomes[0].envelope.protocol_version() == net::kProtocolVersion);
  if (!message_part.empty()) CHECK(outcomes[0].envelope.error().message().find(message_part) != std::string::npos);
  CHECK(outcomes[1].kind == ReadOutcome::Kind::kClosed);
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& ch : out) ch = static_cast<char>(gen() & 0xFF);
  return out;
}

}  // namespace

TEST_CASE("malformed oversized out-of-order and silent connections get an error or are closed while training goes on",
          "[integration][framing]") {
  TempDir dir("framing");
  const Pki pki = make_pki(dir / "pki", 3);

  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.hello_timeout_s = 1;
  agg.total_rounds = 3;  // enough training time that the aggregator is surely still busy after all the probes
  agg.cohort_target = 2;  // the two well-behaved clients; a round never starts with a raw probe in it
  agg.cohort_min = 2;
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());

  ProbeOptions tls;
  tls.port = port;
  tls.ca_file = pki.ca();
  tls.cert_file = pki.client_cert(3);  // the raw probes authenticate as client-3
  tls.key_file = pki.client_key(3);
  auto connect = [&] {
    auto probe = std::make_unique<Probe>(tls);
    const std::string error = probe->handshake();
    INFO("handshake: " << error);
    REQUIRE(error.empty());
    return probe;
  };

  // A second hello on a connection, before any good client is there: admitted to the check-in, then refused; the
  // coordinator forgets it, so it never holds up a round.
  {
    auto probe = connect();
    REQUIRE(probe->write_raw(net::encode_frame(hello_envelope("client-3")) + net::encode_frame(hello_envelope("client-3"))));
    const auto outcomes = probe->read_until_closed(10s);
    std::string seen;
    for (const auto& o : outcomes) seen += o.describe() + "\n";
    INFO("second hello; received:\n" << seen);
    REQUIRE(outcomes.size() == 3);
    CHECK(outcomes[0].kind == ReadOutcome::Kind::kEnvelope);
    CHECK(outcomes[0].envelope.has_admit());
    CHECK(outcomes[1].is_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE));
    CHECK(outcomes[1].envelope.error().message().find("hello") != std::string::npos);
    CHECK(outcomes[2].kind == ReadOutcome::Kind::kClosed);
  }

  // A silent client: it must get DEADLINE_EXCEEDED after hello_timeout_s (1 s); its answer is read further down.
  const auto silent_start = std::chrono::steady_clock::now();
  auto silent = connect();
  // And one that starts a frame and stalls in the middle of it (slowloris): the same deadline applies.
  auto stalled = connect();
  REQUIRE(stalled->write_raw(net::encode_frame(hello_envelope("client-3")).substr(0, 7)));

  // The well-behaved clients. They train on 3000 examples each, so each round takes a while.
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= 2; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.num_shards = 2;
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 3000;
    c.state_dir = dir / c.id;
    c.save_local_models = false;
    clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
  }
  for (auto& c : clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(wait_until([&] { return c->log_contains("round 1: received the global model"); }, 60s));
  }

  // Round 1 is training now: in come the broken peers.
  {
    INFO("truncated frame, then FIN without close_notify");
    auto probe = connect();
    REQUIRE(probe->write_raw(frame_of_payload(std::string(100, 'x')).substr(0, 20)));
    probe->shutdown_send();
    const auto outcomes = probe->read_until_closed(10s);
    REQUIRE_FALSE(outcomes.empty());
    CHECK(outcomes.back().kind == ReadOutcome::Kind::kClosed);
    for (std::size_t i = 0; i + 1 < outcomes.size(); ++i) CHECK(outcomes[i].envelope.has_error());
  }
  {
    INFO("truncated frame, then an abrupt close");
    auto probe = connect();
    REQUIRE(probe->write_raw(frame_of_payload(std::string(100, 'x')).substr(0, 50)));
    probe->close();
  }
  {
    INFO("length prefix 0xFFFFFFFF");
    auto probe = connect();
    REQUIRE(probe->write_raw(std::string(4, '\xFF')));
    require_error_then_close(*probe, v1::ERROR_CODE_FRAME_TOO_LARGE, "4294967295");
  }
  {
    INFO("length prefix just above max_frame_bytes (8 MiB), followed by some bytes");
    auto probe = connect();
    REQUIRE(probe->write_raw(frame_of_payload(std::string(16, 'a')).replace(0, 4, std::string("\x00\x80\x00\x01", 4))));
    require_error_then_close(*probe, v1::ERROR_CODE_FRAME_TOO_LARGE);
  }
  {
    INFO("zero-length frame");
    auto probe = connect();
    REQUIRE(probe->write_raw(std::string(4, '\0')));
    require_error_then_close(*probe, v1::ERROR_CODE_MALFORMED_FRAME);
  }
  {
    INFO("a well-framed payload of random bytes");
    auto probe = connect();
    REQUIRE(probe->write_raw(frame_of_payload("\xFF\xFF\xFF" + random_bytes(197, 7))));
    require_error_then_close(*probe, v1::ERROR_CODE_MALFORMED_FRAME);
  }
  {
    INFO("4 KiB of random bytes, length prefix and all");
    auto probe = connect();
    REQUIRE(probe->write_raw(random_bytes(4096, 11)));
    require_error_then_close(*probe, v1::ERROR_CODE_UNSPECIFIED);
  }
  {
    INFO("an envelope of this protocol version and no body");
    auto probe = connect();
    v1::Envelope empty;
    empty.set_protocol_version(net::kProtocolVersion);
    REQUIRE(probe->write_raw(frame_of_payload(empty.SerializeAsString())));
    require_error_then_close(*probe, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "no known message");
  }
  {
    INFO("an envelope whose body is an unknown field (number 99)");
    auto probe = connect();
    v1::Envelope env;
    env.set_protocol_version(net::kProtocolVersion);
    // field 99, wire type 2 (length-delimited): tag varint (99 << 3 | 2) = 0x9A 0x06, length 3, "abc"
    REQUIRE(probe->write_raw(frame_of_payload(env.SerializeAsString() + std::string("\x9A\x06\x03" "abc", 6))));
    require_error_then_close(*probe, v1::ERROR_CODE_UNEXPECTED_MESSAGE);
  }
  for (const std::uint32_t version : {net::kProtocolVersion - 1, net::kProtocolVersion + 1}) {
    INFO("a hello from a client that claims protocol version " << version);
    auto probe = connect();
    v1::Envelope env = hello_envelope("client-3");
    env.set_protocol_version(version);
    REQUIRE(probe->write_raw(frame_of_payload(env.SerializeAsString())));
    require_error_then_close(*probe, v1::ERROR_CODE_UNSUPPORTED_VERSION,
                             version < net::kProtocolVersion ? "upgrade the sender" : "upgrade the receiver");
  }
  {
    INFO("an update before hello");
    auto probe = connect();
    v1::Envelope env;
    env.mutable_update()->set_round_id(1);
    env.mutable_update()->set_num_examples(10);
    REQUIRE(probe->write_envelope(env));
    require_error_then_close(*probe, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "expected hello");
  }
  {
    INFO("a tensor chunk before hello");
    auto probe = connect();
    v1::Envelope env;
    env.mutable_chunk()->set_tensor_index(0);
    env.mutable_chunk()->set_data("0123456789");
    REQUIRE(probe->write_envelope(env));
    require_error_then_close(*probe, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "expected hello");
  }
  {
    INFO("the silent client");
    require_error_then_close(*silent, v1::ERROR_CODE_DEADLINE_EXCEEDED, "hello");
    CHECK(std::chrono::steady_clock::now() - silent_start >= 900ms);
    CHECK(aggregator->log_contains("no hello within server.hello_timeout_s"));
  }
  {
    INFO("the client that stalled in the middle of its hello");
    require_error_then_close(*stalled, v1::ERROR_CODE_DEADLINE_EXCEEDED, "hello");
  }

  // All of that left the aggregator running and still serving: a fresh connection still completes a handshake.
  REQUIRE(aggregator->running());
  {
    auto probe = connect();
    probe->close();
  }

  for (auto& c : clients) {
    const auto code = c->wait_for_exit(120s);
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(code == 0);
    CHECK(c->log_contains("contributed to 3 rounds"));
  }
  REQUIRE(aggregator->wait_for_exit(30s) == 0);

  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 3);
  for (std::uint64_t r = 1; r <= 3; ++r) {
    CHECK(rounds[r - 1].at("schema_version") == 5);
    CHECK(rounds[r - 1].at("round") == r);
    CHECK(rounds[r - 1].at("status") == "completed");
    CHECK(rounds[r - 1].at("survivors") == 2);
    CHECK(rounds[r - 1].at("dropped").empty());
  }
  CHECK(aggregator->log_contains("4294967295"));
}

}  // namespace sotto::test
