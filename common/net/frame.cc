#include "common/net/frame.h"

#include <array>
#include <string>

#include "common/util/error.h"

namespace sotto::net {

std::array<std::uint8_t, kFrameHeaderBytes> encode_frame_header(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 8),
          static_cast<std::uint8_t>(n)};
}

std::uint32_t decode_frame_header(std::span<const std::uint8_t, kFrameHeaderBytes> h) {
  return (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) | (std::uint32_t{h[2]} << 8) | std::uint32_t{h[3]};
}

std::string encode_frame(v1::Envelope envelope) {
  envelope.set_protocol_version(kProtocolVersion);
  const std::size_t size = envelope.ByteSizeLong();
  if (size > 0xFFFFFFFFu) throw Error("envelope of " + std::to_string(size) + " bytes does not fit in one frame");
  std::string frame(kFrameHeaderBytes + size, '\0');
  auto header = encode_frame_header(static_cast<std::uint32_t>(size));
  std::copy(header.begin(), header.end(), frame.begin());
  if (!envelope.SerializeToArray(frame.data() + kFrameHeaderBytes, static_cast<int>(size))) {
    throw Error("failed to serialize an envelope");
  }
  return frame;
}

std::optional<FrameError> check_frame_length(std::uint32_t length, std::size_t max_frame_bytes) {
  if (length > max_frame_bytes) {
    return FrameError{v1::ERROR_CODE_FRAME_TOO_LARGE, "frame announces " + std::to_string(length) +
                                                          " bytes, more than the maximum of " +
                                                          std::to_string(max_frame_bytes) + " (max_frame_bytes)"};
  }
  if (length == 0) return FrameError{v1::ERROR_CODE_MALFORMED_FRAME, "frame announces an empty envelope"};
  return std::nullopt;
}

namespace {

// Names both versions and which side has to move, in words that read the same in either peer's log: an error
// frame carries this message back to the sender.
FrameError unsupported_version(std::uint32_t sent) {
  const std::string theirs = std::to_string(sent), ours = std::to_string(kProtocolVersion);
  const std::string advice =
      sent < kProtocolVersion
          ? "upgrade the sender (an older Sotto release) to one that speaks version " + ours
          : "upgrade the receiver to a Sotto release that speaks version " + theirs + ", or run a sender of version " + ours;
  return FrameError{v1::ERROR_CODE_UNSUPPORTED_VERSION, "protocol version " + theirs +
                                                            " is not supported; the receiver speaks " + ours +
                                                            " only: " + advice};
}

}  // namespace

std::optional<FrameError> parse_envelope(std::string_view payload, v1::Envelope& out) {
  if (!out.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return FrameError{v1::ERROR_CODE_MALFORMED_FRAME,
                      "frame of " + std::to_string(payload.size()) + " bytes is not a valid sotto.v1.Envelope"};
  }
  if (out.protocol_version() != kProtocolVersion) return unsupported_version(out.protocol_version());
  if (out.body_case() == v1::Envelope::BODY_NOT_SET) {
    return FrameError{v1::ERROR_CODE_UNEXPECTED_MESSAGE, "envelope carries no known message (unknown or empty body)"};
  }
  return std::nullopt;
}

std::string body_name(const v1::Envelope& envelope) {
  const auto* field = v1::Envelope::descriptor()->FindFieldByNumber(static_cast<int>(envelope.body_case()));
  return field ? field->name() : "empty";
}

std::optional<FrameError> FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (failed_) return FrameError{v1::ERROR_CODE_MALFORMED_FRAME, "decoder already failed"};
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (!expected_) {
      const std::size_t take = std::min(kFrameHeaderBytes - header_.size(), bytes.size() - i);
      header_.append(reinterpret_cast<const char*>(bytes.data() + i), take);
      i += take;
      if (header_.size() < kFrameHeaderBytes) break;
      const auto* h = reinterpret_cast<const std::uint8_t*>(header_.data());
      const std::uint32_t length = decode_frame_header(std::span<const std::uint8_t, kFrameHeaderBytes>(h, 4));
      if (auto err = check_frame_length(length, max_frame_bytes_)) {
        failed_ = true;
        return err;
      }
      expected_ = length;
      header_.clear();
      body_.clear();
    }
    const std::size_t take = std::min<std::size_t>(*expected_ - body_.size(), bytes.size() - i);
    body_.append(reinterpret_cast<const char*>(bytes.data() + i), take);
    i += take;
    if (body_.size() == *expected_) {
      ready_.push_back(std::move(body_));
      body_.clear();
      expected_.reset();
    }
  }
  return std::nullopt;
}

std::optional<std::string> FrameDecoder::next() {
  if (ready_.empty()) return std::nullopt;
  std::string out = std::move(ready_.front());
  ready_.pop_front();
  return out;
}

std::size_t FrameDecoder::pending_bytes() const {
  return header_.size() + (expected_ ? body_.size() + 4 : 0);
}

}  // namespace sotto::net
