#include "client/session_outcome.h"

#include <spdlog/spdlog.h>

namespace sotto::client {

namespace {

bool is_fatal(v1::ErrorCode code) {
  return code == v1::ERROR_CODE_UNAUTHENTICATED || code == v1::ERROR_CODE_UNSUPPORTED_VERSION ||
         code == v1::ERROR_CODE_EXCLUDED;
}

}  // namespace

bool ends_session(const v1::Envelope& env, SessionResult& result, const std::function<void(const ClientEvent&)>& emit) {
  if (env.has_error()) {
    const auto& e = env.error();
    emit({ClientEventKind::kRejected, 0, e.message()});
    if (is_fatal(e.code())) throw FatalError("aggregator refused this client: " + e.message());
    spdlog::warn("aggregator: {} ({})", e.message(), v1::ErrorCode_Name(e.code()));
    result.outcome = SessionEnd::kDisconnected;
    result.message = "aggregator error: " + e.message();
    return true;
  }
  if (env.has_finished()) {
    result.outcome = SessionEnd::kFinished;
    result.message = "training finished after " + std::to_string(env.finished().rounds_completed()) + " rounds";
    return true;
  }
  if (env.has_retry_later()) {
    result.outcome = SessionEnd::kRetryLater;
    result.retry_delay = std::chrono::milliseconds(env.retry_later().delay_ms());
    result.message = env.retry_later().reason();
    emit({ClientEventKind::kRetryLater, 0, result.message, static_cast<double>(result.retry_delay.count())});
    return true;
  }
  return false;
}

}  // namespace sotto::client
