// libFuzzer target: bytes from a hostile peer, through everything that touches them before the protocol logic.
//
// Input: one byte that picks where the rest is split into two feeds (exercising incremental decoding), then the byte
// stream itself. Every complete frame is parsed as an Envelope; a task or an update (or, for payloads that are no
// envelope, a checkpoint header, which uses the same framing on disk) opens a ModelAssembler with a 1 MiB limit,
// which the chunk envelopes that follow feed. Besides the sanitizers, the target checks invariants and traps when
// one breaks: the decoder never holds more than one frame's worth, a failed decoder stays failed, and a completed
// model re-encodes to chunks that reassemble into the same model.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/codec/model_stream.h"
#include "common/model/parameters.h"
#include "common/net/frame.h"
#include "common/util/error.h"
#include "google/protobuf/stubs/logging.h"
#include "sotto/v1/sotto.pb.h"

namespace {

using namespace sotto;

constexpr std::size_t kMaxFrameBytes = 64 * 1024;
constexpr std::size_t kMaxModelBytes = 1 << 20;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

class Session {
 public:
  explicit Session(std::size_t rechunk_bytes) : rechunk_bytes_(rechunk_bytes) {}

  void on_payload(const std::string& payload) {
    check(!payload.empty() && payload.size() <= kMaxFrameBytes);
    v1::Envelope envelope;
    if (auto error = net::parse_envelope(payload, envelope)) {
      check(!error->message.empty());
      v1::CheckpointHeader header;
      if (header.ParseFromString(payload) && header.has_model()) start(header.model());
      return;
    }
    check(envelope.protocol_version() == net::kProtocolVersion);
    check_reencodes(envelope);
    switch (envelope.body_case()) {
      case v1::Envelope::kTask:
        if (envelope.task().has_model()) start(envelope.task().model());
        break;
      case v1::Envelope::kUpdate:
        if (envelope.update().has_delta()) start(envelope.update().delta());
        break;
      case v1::Envelope::kChunk:
        if (assembler_) accept(envelope.chunk());
        break;
      default:
        break;
    }
  }

 private:
  // encode_frame(parsed) must decode to an envelope that serializes identically.
  static void check_reencodes(const v1::Envelope& envelope) {
    const std::string frame = net::encode_frame(envelope);
    net::FrameDecoder decoder(frame.size());
    check(!decoder.feed({reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()}));
    auto payload = decoder.next();
    check(payload.has_value() && decoder.pending_bytes() == 0 && !decoder.next());
    v1::Envelope again;
    check(!net::parse_envelope(*payload, again));
    check(again.SerializeAsString() == envelope.SerializeAsString());
  }

  void start(const v1::ModelManifest& manifest) {
    assembler_.reset();
    try {
      assembler_.emplace(manifest, kMaxModelBytes);
    } catch (const Error&) {
      return;  // a manifest the assembler refuses is fine; it must only refuse with sotto::Error
    }
    if (assembler_->complete()) finish();
  }

  void accept(const v1::TensorChunk& chunk) {
    const std::size_t before = assembler_->received_bytes();
    if (auto error = assembler_->accept(chunk)) {
      check(!error->empty() && !assembler_->complete());
      assembler_.reset();
      return;
    }
    check(assembler_->received_bytes() == before + chunk.data().size());
    if (assembler_->complete()) finish();
  }

  void finish() {
    const std::size_t received = assembler_->received_bytes();
    model::ModelParameters params = assembler_->take();
    assembler_.reset();
    check(params.total_bytes() == received && received <= kMaxModelBytes);
    check(!params.layout_mismatch(params));
    (void)params.first_non_finite();
    bool all_integers = true;
    for (const auto& t : params.tensors()) all_integers = all_integers && !model::is_floating(t.dtype);
    try {
      const model::ModelParameters sum = model::add(params, params);
      // Integers wrap, so (x + x) - x == x exactly; floating point may overflow to Inf or quiet a NaN.
      if (all_integers) check(model::subtract(sum, params) == params);
    } catch (const Error&) {
      // float16, bfloat16 and bool are not supported for arithmetic; that is reported, not crashed on.
    }

    // Re-encode and reassemble: the same model, bit for bit.
    codec::ModelAssembler again(codec::make_manifest(params), params.total_bytes());
    std::size_t chunks = 0;
    codec::for_each_chunk(params, rechunk_bytes_, [&](v1::TensorChunk&& c) {
      check(c.data().size() >= 1 && c.data().size() <= rechunk_bytes_);
      check(!again.accept(c));
      ++chunks;
    });
    check(chunks == codec::chunk_count(params, rechunk_bytes_));
    check(again.complete() && again.take() == params);
  }

  std::size_t rechunk_bytes_;
  std::optional<codec::ModelAssembler> assembler_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libprotobuf logs every string field with invalid UTF-8 to stderr; at fuzzing rates that is only noise.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> stream(data + 1, size - 1);
  const std::size_t split = stream.size() * data[0] / 255;

  net::FrameDecoder decoder(kMaxFrameBytes);
  Session session(1 + data[0] % 64);
  auto drain = [&] {
    while (auto payload = decoder.next()) session.on_payload(*payload);
  };

  for (const auto part : {stream.first(split), stream.subspan(split)}) {
    const bool was_failed = decoder.failed();
    const auto error = decoder.feed(part);
    check(!was_failed || error.has_value());  // a failed decoder stays failed
    check(error.has_value() == decoder.failed());
    if (error) check(!error->message.empty());
    // At most one incomplete frame (header plus body) is ever held.
    check(decoder.pending_bytes() <= net::kFrameHeaderBytes + kMaxFrameBytes);
    drain();
  }
  return 0;
}
