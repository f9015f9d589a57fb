#include "aggregator/update_stream.h"

#include "common/codec/model_stream.h"
#include "common/net/frame_io.h"
#include "common/util/error.h"

namespace sotto::aggregator {

boost::asio::awaitable<UpdateStream> read_update_stream(Connection& c, const v1::ModelManifest& manifest,
                                                        std::size_t max_bytes, std::string& buffer,
                                                        const std::function<void(std::size_t)>& count_received) {
  UpdateStream out;
  std::optional<codec::ModelAssembler> assembler;
  try {
    assembler.emplace(manifest, max_bytes);
  } catch (const Error& e) {  // the manifest is the peer's input: its parse error is the refusal
    out.refusal = Refusal{v1::ERROR_CODE_INVALID_UPDATE, std::string("update rejected: ") + e.what()};
    co_return out;
  }
  while (!assembler->complete()) {
    v1::Envelope env;
    auto r = co_await net::async_read_envelope(c.stream, env, c.frame_limit, buffer);
    count_received(r.bytes);
    if (c.closing) co_return UpdateStream{};
    if (r.error) {
      out.refusal = Refusal{r.error->code, r.error->message};
      co_return out;
    }
    if (!env.has_chunk()) {
      out.refusal = Refusal{v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                            "expected a chunk of the update, got " + net::body_name(env) + " message"};
      co_return out;
    }
    if (auto err = assembler->accept(env.chunk())) {
      out.refusal = Refusal{v1::ERROR_CODE_INVALID_UPDATE, "update stream: " + *err};
      co_return out;
    }
    // Many uploads assemble at once: each holds its tensors, not also a chunk-sized frame buffer between chunks.
    if (buffer.capacity() > net::kFrameReadStepBytes) std::string().swap(buffer);
  }
  out.parameters = assembler->take();
  co_return out;
}

}  // namespace sotto::aggregator
