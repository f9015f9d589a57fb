// libFuzzer target: what the binaries do with a hostile peer's bytes and a damaged checkpoint, on the very code
// paths they run (frame_fuzzer.cc covers FrameDecoder and the model stream on their own).
//
// Input: a mode byte, then the payload.
//   mode < 0xC0: the payload is a byte stream written into a real (AF_UNIX) socket and read back with
//     net::async_read_envelope, as both binaries read every frame, with a frame limit picked by the mode byte.
//     Every envelope is then decoded as the daemon and the client decode it (the SecAgg+ messages'
//     secagg::from_proto, the task's round::task_from_proto) and the SecAgg+ messages are fed to a
//     secagg::ServerSession (n = 4, k = 3, t = 2) as from the client index the last hello named ("0".."4"; 4 is out
//     of range on purpose), a chunk's bytes as a masked input, and a `finished` envelope closing the current step.
//   mode >= 0xC0: the payload is a model file (a checkpoint) for codec::parse_model_file.
// Refusals must be sotto::Error with a message; besides the sanitizers, the target traps when an invariant breaks:
// the read buffer never exceeds the frame limit, a session that aborted refuses everything after.
#include <boost/asio.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <sstream>
#include <string>

#include "common/codec/model_file.h"
#include "common/net/frame_io.h"
#include "common/round/message_codec.h"
#include "common/secagg/server_session.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"
#include "google/protobuf/stubs/logging.h"
#include "sotto/v1/sotto.pb.h"

namespace {

using namespace sotto;
namespace asio = boost::asio;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Runs `body`; a sotto::Error is a refusal and must say something.
template <typename Body>
bool refused(Body&& body) {
  try {
    body();
    return false;
  } catch (const Error& e) {
    check(e.what()[0] != '\0');
    return true;
  }
}

// The SecAgg+ messages of a stream, in order, to one server session.
class SecureRoundFeed {
 public:
  void on_envelope(const v1::Envelope& env) {
    if (env.has_hello()) {
      const std::string& id = env.hello().client_id();
      index_ = id.empty() ? 0 : static_cast<secagg::ClientIndex>(static_cast<unsigned char>(id[0]) - '0') % 5;
      return;
    }
    const secagg::ClientIndex index = index_;
    const bool was_aborted = session_.aborted();
    bool rejected = false;
    if (env.has_secagg_advertise()) {
      rejected = refused([&] { session_.on_advertise(index, secagg::from_proto(env.secagg_advertise())); });
    } else if (env.has_secagg_shares()) {
      rejected = refused([&] { session_.on_encrypted_shares(index, {secagg::from_proto(env.secagg_shares())}); });
    } else if (env.has_secagg_accusation()) {
      rejected = refused([&] { (void)session_.on_accusation(index, secagg::from_proto(env.secagg_accusation())); });
    } else if (env.has_secagg_unmask_response()) {
      rejected = refused([&] { session_.on_unmask_response(index, secagg::from_proto(env.secagg_unmask_response())); });
    } else if (env.has_chunk()) {  // its bytes as a masked input
      const std::string& bytes = env.chunk().data();
      secagg::MaskedInput input{std::vector<std::uint32_t>(bytes.size() / 4)};
      if (!input.y.empty()) std::memcpy(input.y.data(), bytes.data(), input.y.size() * 4);
      rejected = refused([&] { session_.on_masked_input(index, input); });
    } else if (env.has_finished()) {
      rejected = close_step();
    } else {
      (void)refused([&] { (void)secagg::from_proto(env.secagg_key_directory()); });
      (void)refused([&] { (void)secagg::from_proto(env.secagg_unmask_request()); });
      if (env.has_task()) (void)refused([&] { (void)round::task_from_proto(env.task(), {}); });
      return;
    }
    check(!was_aborted || rejected);  // an aborted session takes nothing more
  }

 private:
  bool close_step() {
    switch (step_++) {
      case 0: return refused([&] { (void)session_.close_advertise(); });
      case 1: return refused([&] { (void)session_.close_share_keys(); });
      case 2: return refused([&] { (void)session_.close_masked_input(); });
      case 3: return refused([&] { (void)session_.close_unmasking(); });
      default: return refused([&] { (void)session_.close_unmasking(); });  // after the end: refused
    }
  }

  secagg::ServerSession session_{secagg::RoundConfig{1, 4, 3, 2, 4, 32}};
  secagg::ClientIndex index_ = 0;
  int step_ = 0;
};

void fuzz_stream(std::span<const std::uint8_t> bytes, std::size_t max_frame_bytes) {
  asio::io_context io;
  asio::local::stream_protocol::socket reader(io), writer(io);
  asio::local::connect_pair(reader, writer);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await asio::async_write(writer, asio::buffer(bytes.data(), bytes.size()), asio::use_awaitable);
          writer.shutdown(asio::socket_base::shutdown_send);
        } catch (const boost::system::system_error&) {
          // the reader stopped at a bad frame and closed its end
        }
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        struct CloseWhenDone {  // so that the writer's pending bytes fail instead of waiting forever
          asio::local::stream_protocol::socket& socket;
          ~CloseWhenDone() {
            boost::system::error_code ignored;
            socket.close(ignored);
          }
        } close_when_done{reader};
        SecureRoundFeed feed;
        std::string buffer;
        for (;;) {
          v1::Envelope env;
          net::ReadResult r;
          try {
            r = co_await net::async_read_envelope(reader, env, max_frame_bytes, buffer);
          } catch (const boost::system::system_error&) {
            co_return;  // the stream ended mid-frame or between frames
          }
          check(buffer.size() <= max_frame_bytes);  // never more than one frame's worth, whatever was announced
          check(r.bytes >= net::kFrameHeaderBytes && r.bytes <= net::kFrameHeaderBytes + max_frame_bytes);
          if (r.error) {
            check(!r.error->message.empty());
            co_return;  // the binaries close the connection after a bad frame
          }
          feed.on_envelope(env);
        }
      },
      asio::detached);
  io.run();
}

void fuzz_model_file(std::span<const std::uint8_t> bytes) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  try {
    const codec::ModelFile file = codec::parse_model_file(in, bytes.size(), "<fuzz>");
    check(file.model.total_bytes() <= bytes.size());
    check(file.strategy_state.total_bytes() <= bytes.size());
  } catch (const Error& e) {
    check(e.what()[0] != '\0');
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in string fields is only noise at fuzzing rates
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> payload(data + 1, size - 1);
  if (data[0] >= 0xC0) {
    fuzz_model_file(payload);
  } else {
    fuzz_stream(payload, std::size_t{256} << (data[0] % 9));  // 256 B .. 64 KiB frames
  }
  return 0;
}
