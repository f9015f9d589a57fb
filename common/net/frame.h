// Frame: the unit on every Sotto connection — a 4-byte big-endian length, then that many bytes of one
// serialized sotto.v1.Envelope.
//
// FrameDecoder turns a byte stream into frames incrementally and checks the announced length against the
// configured maximum *before* it allocates, so a hostile length prefix costs nothing. Envelope helpers stamp and
// check the protocol version and reject bytes that do not parse, with a message that says which.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sotto/v1/sotto.pb.h"

namespace sotto::net {

// 2: SecAgg+ with one channel key per pair of neighbours (the graph seed travels in the task).
inline constexpr std::uint32_t kProtocolVersion = 2;
inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::size_t kDefaultMaxFrameBytes = 8u << 20;

// Big-endian length prefix of a frame of `payload_size` bytes.
std::array<std::uint8_t, kFrameHeaderBytes> encode_frame_header(std::uint32_t payload_size);
std::uint32_t decode_frame_header(std::span<const std::uint8_t, kFrameHeaderBytes> header);

// Serializes `envelope` (stamping kProtocolVersion) into a complete frame: header + payload.
std::string encode_frame(v1::Envelope envelope);

// What went wrong with a frame, in words meant for the log and the peer's error message.
struct FrameError {
  v1::ErrorCode code;
  std::string message;
};

// Checks an announced payload length against the limit; the message says both numbers.
std::optional<FrameError> check_frame_length(std::uint32_t length, std::size_t max_frame_bytes);

// Parses one frame payload into an envelope: rejects unparsable bytes, a protocol version other than ours, and an
// envelope with no body.
std::optional<FrameError> parse_envelope(std::string_view payload, v1::Envelope& out);

// The name of the message an envelope carries ("hello", "update", ...), or "empty", for error messages.
std::string body_name(const v1::Envelope& envelope);

// Incremental decoder for a byte stream. feed() bytes as they arrive; next() yields complete payloads in order.
// After an error the decoder stays failed: the connection must be closed.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame_bytes = kDefaultMaxFrameBytes) : max_frame_bytes_(max_frame_bytes) {}

  // Consumes bytes; returns an error if a frame's announced length exceeds the maximum.
  std::optional<FrameError> feed(std::span<const std::uint8_t> bytes);
  // The next complete payload, if any.
  std::optional<std::string> next();
  bool failed() const { return failed_; }
  // Bytes of an incomplete frame held so far (0 at a frame boundary).
  std::size_t pending_bytes() const;

 private:
  std::size_t max_frame_bytes_;
  bool failed_ = false;
  std::string header_;
  std::optional<std::uint32_t> expected_;
  std::string body_;
  std::deque<std::string> ready_;
};

}  // namespace sotto::net
