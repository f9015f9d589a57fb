#include "aggregator/conversation.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "aggregator/refusal.h"
#include "aggregator/update_stream.h"
#include "common/codec/model_stream.h"
#include "common/net/frame_io.h"
#include "common/net/tls_context.h"
#include "common/secagg/update_vector.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"

namespace sotto::aggregator {

namespace asio = boost::asio;

namespace {

// The SecAgg+ step a client's message belongs to, for the traffic counts.
std::optional<secagg::Step> secagg_step_of(const v1::Envelope& env, bool secure_round) {
  if (env.has_secagg_advertise()) return secagg::Step::kAdvertiseKeys;
  if (env.has_secagg_shares()) return secagg::Step::kShareKeys;
  if (env.has_secagg_unmask_response()) return secagg::Step::kUnmasking;
  if ((env.has_update() && secure_round) || env.has_secagg_accusation()) return secagg::Step::kMaskedInput;
  return std::nullopt;
}

}  // namespace

Conversation::Conversation(ConversationHost& host, const Authenticator& authenticator, ConversationLimits limits)
    : host_(host), authenticator_(authenticator), limits_(limits), uploads_(limits.max_upload_assembly_bytes) {}

asio::awaitable<void> Conversation::run(std::shared_ptr<Connection> c) {
  if (!co_await handshake(c)) co_return;
  std::string buffer;
  if (!c->refusal.empty()) {
    co_await refuse(c, buffer);
    co_return;
  }
  try {
    switch (co_await read_hello(c, buffer)) {
      case HelloOutcome::kRefused:
        co_await c->drain(buffer);
        co_return;
      case HelloOutcome::kStopping:
        c->close();
        co_return;
      case HelloOutcome::kAdmitted:
        break;
    }
    if (co_await serve(c, buffer)) co_await c->drain(buffer);
  } catch (const boost::system::system_error& e) {
    lost(c, e.code() == asio::error::eof || e.code() == asio::ssl::error::stream_truncated
                ? std::string("connection closed by the client")
                : e.code().message());
  }
}

void Conversation::violation(const std::shared_ptr<Connection>& c, v1::ErrorCode code, const std::string& message) {
  if (c->closing) return;
  host_.warn_about(*c, message);
  host_.count_refused(error_code_label(code));
  v1::Envelope env;
  env.mutable_error()->set_code(code);
  env.mutable_error()->set_message(message);
  c->send(std::move(env));
  c->finish_after_flush();
  if (c->in_protocol) {
    c->in_protocol = false;
    host_.dispatch(host_.coordinator()->on_disconnect(c->id, message, Clock::now()));
  }
}

void Conversation::lost(const std::shared_ptr<Connection>& c, const std::string& reason) {
  const bool was_in_protocol = c->in_protocol && !c->closing;
  c->in_protocol = false;
  c->closing = true;
  c->close();
  if (was_in_protocol) {
    spdlog::info("{}: {}", c->who(), reason);
    host_.dispatch(host_.coordinator()->on_disconnect(c->id, reason, Clock::now()));
  }
}

asio::awaitable<bool> Conversation::handshake(const std::shared_ptr<Connection>& c) {
  if (c->refusal.empty()) {
    c->arm(limits_.handshake_timeout, "no TLS handshake within server.handshake_timeout_s");
  } else {
    c->arm(std::min(limits_.handshake_timeout, limits_.refused_handshake_timeout), "no TLS handshake");
  }
  try {
    co_await c->stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    host_.warn_about(*c, "TLS handshake refused: " + e.code().message());
    host_.count_refused("tls_handshake");
    c->close();
    co_return false;
  }
  c->handshake_done = true;
  c->start_writer();
  co_return true;
}

// A connection the gate refused: one error frame naming the cap, then the same close as any other. Logged by the
// server's accept (throttled), not here, so that a flood of refusals does not flood the log.
asio::awaitable<void> Conversation::refuse(std::shared_ptr<Connection> c, std::string& buffer) {
  v1::Envelope env;
  env.mutable_error()->set_code(v1::ERROR_CODE_RESOURCE_EXHAUSTED);
  env.mutable_error()->set_message(c->refusal);
  c->send(std::move(env));
  c->finish_after_flush();
  co_await c->drain(buffer);
}

// The first frame, within server.hello_timeout_s and server.max_hello_bytes: a hello that authenticates. Then the
// connection counts as authenticated and, once the coordinator exists, meets it.
asio::awaitable<Conversation::HelloOutcome> Conversation::read_hello(const std::shared_ptr<Connection>& c,
                                                                    std::string& buffer) {
  c->arm(limits_.hello_timeout, "no hello within server.hello_timeout_s");
  v1::Envelope env;
  auto r = co_await net::async_read_envelope(c->stream, env, c->frame_limit, buffer);
  host_.count_received(r.bytes, std::nullopt);
  if (c->closing) co_return HelloOutcome::kRefused;
  if (r.error) {
    if (r.error->code == v1::ERROR_CODE_FRAME_TOO_LARGE) {
      r.error->message = "before hello, frames are limited to server.max_hello_bytes = " +
                         std::to_string(c->frame_limit) + " bytes: " + r.error->message;
    }
    violation(c, r.error->code, r.error->message);
    co_return HelloOutcome::kRefused;
  }
  if (!env.has_hello()) {
    violation(c, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "expected hello as the first message, got " + net::body_name(env));
    co_return HelloOutcome::kRefused;
  }
  c->disarm();
  AuthOutcome identity = authenticator_.authenticate(net::peer_common_name(c->stream), env.hello());
  if (!identity.client_id) {
    violation(c, v1::ERROR_CODE_UNAUTHENTICATED, identity.refusal);
    co_return HelloOutcome::kRefused;
  }
  const double max_clip_norm = env.hello().max_clip_norm();
  if (!(max_clip_norm >= 0) || !std::isfinite(max_clip_norm)) {
    violation(c, v1::ERROR_CODE_MALFORMED_FRAME,
              "hello.max_clip_norm must be a finite clip norm, or 0 for none; got " + std::to_string(max_clip_norm));
    co_return HelloOutcome::kRefused;
  }
  c->client_id = *identity.client_id;
  c->ticket.authenticated();
  c->frame_limit = limits_.max_frame_bytes;
  co_await host_.coordinator_ready();
  if (!host_.coordinator()) co_return HelloOutcome::kStopping;
  c->in_protocol = true;
  spdlog::debug("{}: hello", c->who());
  const auto& named = env.hello().capabilities();
  const auto names = [&](const char* capability) {
    return std::find(named.begin(), named.end(), capability) != named.end();
  };
  host_.dispatch(host_.coordinator()->on_hello(c->id, c->client_id, Clock::now(), max_clip_norm,
                                               names(round::kAccuracyHistogramCapability),
                                               names(round::kNoisedAccuracyHistogramCapability)));
  co_return HelloOutcome::kAdmitted;
}

// The protocol's messages after hello, to the coordinator. Returns false when the connection is already closed.
asio::awaitable<bool> Conversation::serve(const std::shared_ptr<Connection>& c, std::string& buffer) {
  v1::Envelope env;
  while (!c->closing) {
    auto r = co_await net::async_read_envelope(c->stream, env, c->frame_limit, buffer);
    host_.count_received(r.bytes, r.error ? std::nullopt : secagg_step_of(env, host_.coordinator()->in_secure_round()));
    if (c->closing) break;
    if (r.error) {
      violation(c, r.error->code, r.error->message);
      break;
    }
    if (env.has_update()) {
      co_await receive_update(c, env.update(), buffer);
    } else if (env.has_secagg_advertise() || env.has_secagg_shares() || env.has_secagg_unmask_response() ||
               env.has_secagg_accusation()) {
      secagg_message(c, env);
    } else if (env.has_error()) {  // the client gives up on the round and says why: its reason is the drop's
      lost(c, "the client reported " + v1::ErrorCode_Name(env.error().code()) + ": " + env.error().message());
      co_return false;
    } else {
      violation(c, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "unexpected " + net::body_name(env) + " message after hello");
    }
  }
  co_return true;
}

// An update: its header, then (for the round now training) its stream of chunks — the delta in a plain round, the
// masked input in a secure one. An update for another round goes to the coordinator without its stream, to be
// refused there.
asio::awaitable<void> Conversation::receive_update(std::shared_ptr<Connection> c, v1::UpdateUpload header,
                                                   std::string& buffer) {
  RoundCoordinator& coordinator = *host_.coordinator();
  // The update's bytes are reserved before its chunks are read: past the budget it waits its turn, and what
  // follows judges it by the round as it is once it got in.
  const UploadGate::Pass pass = co_await uploads_.enter(coordinator.max_update_bytes());
  if (c->closing) co_return;
  UpdateSummary summary{header.round_id(), header.num_examples(), header.train_loss(), header.train_accuracy(),
                        header.train_seconds()};
  if (header.has_local_evaluation() && header.local_evaluation().examples() > 0) {
    const auto& e = header.local_evaluation();
    summary.local_evaluation = ml::LocalEvaluation{e.examples(), e.global_accuracy(), e.personal_accuracy()};
  }
  const auto secure = coordinator.secure_config();
  if (coordinator.phase() != RoundCoordinator::Phase::kTraining || header.round_id() != coordinator.round_id()) {
    host_.dispatch(secure ? coordinator.on_masked_input(c->id, MaskedUpload{summary, {}}, Clock::now())
                          : coordinator.on_update(c->id, ClientUpdate{summary, {}}, Clock::now()));
    co_return;
  }
  if (!secure) {
    if (auto mismatch = codec::manifest_mismatch(header.delta(), *coordinator.global_model())) {
      violation(c, v1::ERROR_CODE_INVALID_UPDATE, "update does not match the model: " + *mismatch);
      co_return;
    }
  }
  const auto step = secure ? std::optional(secagg::Step::kMaskedInput) : std::nullopt;
  UpdateStream stream = co_await read_update_stream(*c, header.delta(), coordinator.max_update_bytes(), buffer,
                                                    [&](std::size_t bytes) { host_.count_received(bytes, step); });
  if (stream.refusal) violation(c, stream.refusal->code, stream.refusal->message);
  if (!stream.parameters) co_return;
  if (!secure) {
    host_.dispatch(coordinator.on_update(c->id, ClientUpdate{summary, std::move(*stream.parameters)}, Clock::now()));
    co_return;
  }
  MaskedUpload upload{summary, {}};
  try {
    upload.input = secagg::masked_input_of(std::move(*stream.parameters), secure->bits,
                                           static_cast<std::size_t>(secure->vector_length));
  } catch (const Error& e) {  // the stream's tensor is not a masked input of this round
    violation(c, v1::ERROR_CODE_INVALID_UPDATE, e.what());
    co_return;
  }
  host_.dispatch(coordinator.on_masked_input(c->id, std::move(upload), Clock::now()));
}

// A SecAgg+ step message: decoded here, judged by the coordinator.
void Conversation::secagg_message(const std::shared_ptr<Connection>& c, const v1::Envelope& env) {
  RoundCoordinator& coordinator = *host_.coordinator();
  const auto now = Clock::now();
  try {
    if (env.has_secagg_advertise()) {
      host_.dispatch(coordinator.on_secagg_advertise(c->id, secagg::from_proto(env.secagg_advertise()), now));
    } else if (env.has_secagg_shares()) {
      host_.dispatch(coordinator.on_secagg_shares(c->id, secagg::from_proto(env.secagg_shares()), now));
    } else if (env.has_secagg_accusation()) {
      host_.dispatch(coordinator.on_secagg_accusation(c->id, secagg::from_proto(env.secagg_accusation()), now));
    } else {
      host_.dispatch(coordinator.on_secagg_unmask(c->id, secagg::from_proto(env.secagg_unmask_response()), now));
    }
  } catch (const Error& e) {  // a message that does not decode: the wire codec's boundary
    violation(c, v1::ERROR_CODE_INVALID_UPDATE, e.what());
  }
}

}  // namespace sotto::aggregator
