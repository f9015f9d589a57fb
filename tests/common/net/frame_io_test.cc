// async_read_envelope over a real stream (a local socket pair): a frame's buffer grows with the bytes that
// arrive, not with the length its prefix announces, and a frame split into many writes reassembles exactly.
#include "common/net/frame_io.h"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

namespace sotto::net {
namespace {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

struct Pair {
  asio::io_context io;
  Socket reader{io}, writer{io};
  Pair() { asio::local::connect_pair(reader, writer); }
  // Writes in pieces small enough for the socket's buffer, letting the reader run after each.
  void send(const std::string& bytes) {
    for (std::size_t at = 0; at < bytes.size(); at += 4096) {
      asio::write(writer, asio::buffer(bytes.data() + at, std::min<std::size_t>(4096, bytes.size() - at)));
      io.poll();
    }
  }
};

std::string header_bytes(std::uint32_t length) {
  const auto h = encode_frame_header(length);
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

struct PendingRead {
  std::string buffer;
  v1::Envelope envelope;
  std::optional<ReadResult> result;
};

void start_read(Pair& p, PendingRead& r, std::size_t max_frame_bytes) {
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> { r.result = co_await async_read_envelope(p.reader, r.envelope, max_frame_bytes, r.buffer); },
      asio::detached);
}

}  // namespace

TEST_CASE("a frame announcing 8 MiB and sending 10 bytes holds a buffer of one read step, not 8 MiB",
          "[net][frame]") {
  Pair p;
  PendingRead r;
  start_read(p, r, 16u << 20);
  p.send(header_bytes(8u << 20) + std::string(10, 'x'));
  p.io.poll();
  REQUIRE_FALSE(r.result);  // still waiting for the rest
  CHECK(r.buffer.capacity() <= 2 * kFrameReadStepBytes);
  CHECK(r.buffer.capacity() < (1u << 20));
}

TEST_CASE("the buffer grows only as the body's bytes arrive", "[net][frame]") {
  Pair p;
  PendingRead r;
  start_read(p, r, 16u << 20);
  p.send(header_bytes(8u << 20));
  const std::string quarter(2u << 20, 'y');
  p.send(quarter);
  p.io.poll();
  REQUIRE_FALSE(r.result);
  CHECK(r.buffer.size() <= quarter.size() + kFrameReadStepBytes);
  CHECK(r.buffer.capacity() <= 2 * (quarter.size() + kFrameReadStepBytes));
}

TEST_CASE("a frame larger than one read step, written in pieces, parses exactly", "[net][frame]") {
  Pair p;
  PendingRead r;
  start_read(p, r, 16u << 20);
  v1::Envelope env;
  env.mutable_chunk()->set_tensor_index(3);
  env.mutable_chunk()->set_data(std::string(3 * kFrameReadStepBytes + 17, 'z'));
  const std::string frame = encode_frame(env);
  p.send(frame);
  p.io.run();
  REQUIRE(r.result);
  CHECK_FALSE(r.result->error);
  CHECK(r.result->bytes == frame.size());
  CHECK(r.envelope.chunk().tensor_index() == 3);
  CHECK(r.envelope.chunk().data() == env.chunk().data());
}

TEST_CASE("a frame announcing more than the caller's limit is refused before any body byte is read",
          "[net][frame]") {
  Pair p;
  PendingRead r;
  start_read(p, r, 4096);
  p.send(header_bytes(4097));
  p.io.run();
  REQUIRE(r.result);
  REQUIRE(r.result->error);
  CHECK(r.result->error->code == v1::ERROR_CODE_FRAME_TOO_LARGE);
  CHECK(r.result->error->message.find("4097") != std::string::npos);
  CHECK(r.buffer.capacity() < 4097);
}

}  // namespace sotto::net
