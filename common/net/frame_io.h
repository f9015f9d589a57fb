// Frame I/O over Boost.Asio streams, as C++20 coroutines: read one envelope (length checked against the caller's
// limit before anything is allocated, and the buffer grown only as the body's bytes arrive) and write one
// pre-encoded frame. Socket failures (peer gone, connection closed) throw boost::system::system_error;
// protocol failures (too large, unparsable, wrong version) come back as a FrameError so the caller can answer the
// peer with an error frame before closing.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/net/frame.h"

namespace sotto::net {

// How far a frame's buffer may grow ahead of the bytes received.
inline constexpr std::size_t kFrameReadStepBytes = 64u << 10;

struct ReadResult {
  std::optional<FrameError> error;
  std::size_t bytes = 0;  // on the wire, header included
};

template <typename Stream>
boost::asio::awaitable<ReadResult> async_read_envelope(Stream& stream, v1::Envelope& envelope,
                                                       std::size_t max_frame_bytes, std::string& buffer) {
  std::array<std::uint8_t, kFrameHeaderBytes> header{};
  co_await boost::asio::async_read(stream, boost::asio::buffer(header), boost::asio::use_awaitable);
  const std::uint32_t length = decode_frame_header(header);
  if (auto err = check_frame_length(length, max_frame_bytes)) co_return ReadResult{std::move(err), kFrameHeaderBytes};
  // The buffer grows with the bytes that arrive, never ahead of them by more than one step: a peer that announces
  // a large frame and sends nothing costs a few bytes, not the announced length.
  buffer.clear();
  while (buffer.size() < length) {
    const std::size_t received = buffer.size();
    const std::size_t step = std::min<std::size_t>(length - received, kFrameReadStepBytes);
    buffer.resize(received + step);
    co_await boost::asio::async_read(stream, boost::asio::buffer(buffer.data() + received, step),
                                     boost::asio::use_awaitable);
  }
  envelope.Clear();
  co_return ReadResult{parse_envelope(buffer, envelope), kFrameHeaderBytes + length};
}

template <typename Stream>
boost::asio::awaitable<void> async_write_frame(Stream& stream, const std::string& frame) {
  co_await boost::asio::async_write(stream, boost::asio::buffer(frame), boost::asio::use_awaitable);
}

}  // namespace sotto::net
