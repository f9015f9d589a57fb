#include "common/net/frame.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace sotto::net {
namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string hello_frame(const std::string& client_id) {
  v1::Envelope envelope;
  envelope.mutable_hello()->set_client_id(client_id);
  return encode_frame(envelope);
}

std::string payload_of(const std::string& frame) { return frame.substr(kFrameHeaderBytes); }

std::string header_bytes(std::uint32_t length) {
  const auto h = encode_frame_header(length);
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

std::string client_id_of(const std::string& payload) {
  v1::Envelope envelope;
  REQUIRE_FALSE(parse_envelope(payload, envelope));
  REQUIRE(envelope.has_hello());
  return envelope.hello().client_id();
}

}  // namespace

TEST_CASE("frame header is the payload length as 4 big-endian bytes and decodes back", "[net][frame]") {
  const auto h = encode_frame_header(0x01020304u);
  CHECK(h == std::array<std::uint8_t, 4>{0x01, 0x02, 0x03, 0x04});
  for (std::uint32_t n : {0u, 1u, 255u, 256u, 0x00FF00FFu, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
    const auto encoded = encode_frame_header(n);
    CHECK(decode_frame_header(std::span<const std::uint8_t, 4>(encoded)) == n);
  }
}

TEST_CASE("encode_frame prefixes the envelope's size and stamps the protocol version", "[net][frame]") {
  v1::Envelope envelope;
  envelope.set_protocol_version(7);  // overwritten: callers never pick the version
  envelope.mutable_admit()->set_round_id(42);
  const std::string frame = encode_frame(envelope);
  REQUIRE(frame.size() > kFrameHeaderBytes);
  const auto* h = reinterpret_cast<const std::uint8_t*>(frame.data());
  CHECK(decode_frame_header(std::span<const std::uint8_t, 4>(h, 4)) == frame.size() - kFrameHeaderBytes);

  v1::Envelope parsed;
  REQUIRE_FALSE(parse_envelope(payload_of(frame), parsed));
  CHECK(parsed.protocol_version() == kProtocolVersion);
  REQUIRE(parsed.has_admit());
  CHECK(parsed.admit().round_id() == 42);
}

TEST_CASE("FrameDecoder reassembles frames fed one byte at a time", "[net][frame]") {
  const std::vector<std::string> frames = {hello_frame("a"), hello_frame(std::string(300, 'b')), hello_frame("c")};
  std::string stream;
  for (const auto& f : frames) stream += f;

  FrameDecoder decoder(1024);
  std::vector<std::string> got;
  std::size_t boundary = 0;  // offset in `stream` where the current frame starts
  std::size_t frame_index = 0;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    REQUIRE_FALSE(decoder.feed(bytes_of(stream.substr(i, 1))));
    const std::size_t fed_in_frame = i + 1 - boundary;
    if (fed_in_frame == frames[frame_index].size()) {
      CHECK(decoder.pending_bytes() == 0);
      auto payload = decoder.next();
      REQUIRE(payload);
      got.push_back(*payload);
      CHECK_FALSE(decoder.next());
      boundary = i + 1;
      ++frame_index;
    } else {
      CHECK(decoder.pending_bytes() == fed_in_frame);
      CHECK_FALSE(decoder.next());
    }
  }
  REQUIRE(got.size() == 3);
  CHECK(client_id_of(got[0]) == "a");
  CHECK(client_id_of(got[1]) == std::string(300, 'b'));
  CHECK(client_id_of(got[2]) == "c");
  CHECK_FALSE(decoder.failed());
}

TEST_CASE("FrameDecoder yields every frame of one feed in order and keeps a partial tail", "[net][frame]") {
  const std::string f1 = hello_frame("one"), f2 = hello_frame("two"), f3 = hello_frame("three"),
                    f4 = hello_frame("four");
  const std::size_t cut = 6;  // inside f4's payload
  FrameDecoder decoder;
  REQUIRE_FALSE(decoder.feed(bytes_of(f1 + f2 + f3 + f4.substr(0, cut))));
  CHECK(decoder.pending_bytes() == cut);
  CHECK(client_id_of(decoder.next().value()) == "one");
  CHECK(client_id_of(decoder.next().value()) == "two");
  CHECK(client_id_of(decoder.next().value()) == "three");
  CHECK_FALSE(decoder.next());

  REQUIRE_FALSE(decoder.feed(bytes_of(f4.substr(cut))));
  CHECK(decoder.pending_bytes() == 0);
  CHECK(client_id_of(decoder.next().value()) == "four");
  CHECK_FALSE(decoder.next());
}

TEST_CASE("FrameDecoder accepts a frame of exactly the maximum size and rejects one byte more", "[net][frame]") {
  const std::string body(100, 'x');
  FrameDecoder at_limit(100);
  REQUIRE_FALSE(at_limit.feed(bytes_of(header_bytes(100) + body)));
  CHECK(at_limit.next() == body);

  FrameDecoder over_limit(100);
  const auto err = over_limit.feed(bytes_of(header_bytes(101)));
  REQUIRE(err);
  CHECK(err->code == v1::ERROR_CODE_FRAME_TOO_LARGE);
  CHECK(over_limit.failed());
}

TEST_CASE("FrameDecoder rejects a hostile length prefix before buffering its body", "[net][frame]") {
  FrameDecoder decoder(64 * 1024);
  // The header arrives split, followed by some of the announced 4 GiB body in the same feed.
  REQUIRE_FALSE(decoder.feed(bytes_of(std::string("\xFF\xFF", 2))));
  const auto err = decoder.feed(bytes_of(std::string("\xFF\xFF", 2) + std::string(1000, 'z')));
  REQUIRE(err);
  CHECK(err->code == v1::ERROR_CODE_FRAME_TOO_LARGE);
  CHECK_THAT(err->message, Catch::Contains("4294967295") && Catch::Contains("65536") &&
                               Catch::Contains("max_frame_bytes"));
  CHECK(decoder.failed());
  CHECK(decoder.pending_bytes() <= kFrameHeaderBytes);
  CHECK_FALSE(decoder.next());
}

TEST_CASE("FrameDecoder rejects a zero-length frame", "[net][frame]") {
  FrameDecoder decoder;
  const auto err = decoder.feed(bytes_of(header_bytes(0)));
  REQUIRE(err);
  CHECK(err->code == v1::ERROR_CODE_MALFORMED_FRAME);
  CHECK_THAT(err->message, Catch::Contains("empty"));
  CHECK(decoder.failed());
}

TEST_CASE("a failed FrameDecoder stays failed and yields nothing more", "[net][frame]") {
  FrameDecoder decoder(1024);
  const std::string good = hello_frame("before");
  // A good frame, then a bad header, then another good frame, all in one feed.
  REQUIRE(decoder.feed(bytes_of(good + header_bytes(5000) + hello_frame("after"))));
  CHECK(decoder.failed());
  // The frame completed before the failure is still delivered; nothing after it is.
  CHECK(client_id_of(decoder.next().value()) == "before");
  CHECK_FALSE(decoder.next());

  const auto again = decoder.feed(bytes_of(hello_frame("later")));
  REQUIRE(again);
  CHECK(again->code == v1::ERROR_CODE_MALFORMED_FRAME);
  CHECK(decoder.failed());
  CHECK_FALSE(decoder.next());
}

TEST_CASE("parse_envelope accepts what encode_frame produced", "[net][frame]") {
  v1::Envelope envelope;
  auto* task = envelope.mutable_task();
  task->set_round_id(9);
  task->mutable_plan()->set_optimizer("sgd");
  task->mutable_model()->set_total_bytes(12);
  v1::Envelope parsed;
  REQUIRE_FALSE(parse_envelope(payload_of(encode_frame(envelope)), parsed));
  CHECK(parsed.body_case() == v1::Envelope::kTask);
  CHECK(parsed.task().round_id() == 9);
  CHECK(parsed.task().plan().optimizer() == "sgd");
}

TEST_CASE("parse_envelope rejects bytes that are not an Envelope", "[net][frame]") {
  v1::Envelope out;
  // A field tag with an invalid wire type (7), and a varint that never ends.
  for (const std::string& bad : {std::string("\x0F\x01", 2), std::string(11, '\xFF')}) {
    const auto err = parse_envelope(bad, out);
    REQUIRE(err);
    CHECK(err->code == v1::ERROR_CODE_MALFORMED_FRAME);
    CHECK_THAT(err->message, Catch::Contains(std::to_string(bad.size()) + " bytes") &&
                                 Catch::Contains("not a valid sotto.v1.Envelope"));
  }
  // Random payloads: whatever they happen to parse as, none is a usable version-1 envelope.
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255), length(1, 200);
  int malformed = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string junk(static_cast<std::size_t>(length(rng)), '\0');
    for (auto& c : junk) c = static_cast<char>(byte(rng));
    const auto err = parse_envelope(junk, out);
    REQUIRE(err);
    if (err->code == v1::ERROR_CODE_MALFORMED_FRAME) ++malformed;
  }
  CHECK(malformed > 1000);
}

TEST_CASE("parse_envelope rejects a protocol version other than ours, naming both", "[net][frame]") {
  for (std::uint32_t version : {0u, kProtocolVersion - 1, kProtocolVersion + 1, 1000u}) {
    v1::Envelope envelope;
    envelope.set_protocol_version(version);
    envelope.mutable_hello()->set_client_id("x");
    v1::Envelope out;
    const auto err = parse_envelope(envelope.SerializeAsString(), out);
    REQUIRE(err);
    CHECK(err->code == v1::ERROR_CODE_UNSUPPORTED_VERSION);
    CHECK_THAT(err->message, Catch::Contains("protocol version " + std::to_string(version)) &&
                                 Catch::Contains("speaks " + std::to_string(kProtocolVersion)));
    // What to upgrade: the older side.
    CHECK_THAT(err->message, Catch::Contains(version < kProtocolVersion ? "upgrade the sender" : "upgrade the receiver"));
  }
}

TEST_CASE("parse_envelope rejects an envelope with no body or only an unknown one", "[net][frame]") {
  v1::Envelope empty;
  empty.set_protocol_version(kProtocolVersion);
  // Version 1 plus an unknown field 99 (varint 5): parses, but carries no message we know.
  const std::string unknown_body = empty.SerializeAsString() + std::string("\x98\x06\x05", 3);
  for (const std::string& payload : {empty.SerializeAsString(), unknown_body}) {
    v1::Envelope out;
    const auto err = parse_envelope(payload, out);
    REQUIRE(err);
    CHECK(err->code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);
    CHECK_THAT(err->message, Catch::Contains("no known message"));
  }
}

}  // namespace sotto::net
