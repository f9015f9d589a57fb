// How one session with the aggregator ended, and what the client does next: come back for the next round, retry
// after the aggregator's delay, stop because training is finished, or reconnect with backoff after a failure.
// Also the messages that may end a session at any step (error, finished, retry later) and the errors that
// retrying cannot fix (FatalError: authentication, protocol version, a task this device cannot do).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "client/client.h"
#include "common/util/error.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::client {

enum class SessionEnd { kRoundDone, kRetryLater, kFinished, kDisconnected };

struct SessionResult {
  SessionEnd outcome = SessionEnd::kDisconnected;
  std::chrono::milliseconds retry_delay{0};
  std::string message;
  bool reached = false;      // the TLS handshake succeeded: the aggregator is up
  bool had_task = false;     // the round's task and model arrived
  bool contributed = false;  // a round completed with this client's update in it
  std::uint64_t bytes = 0;   // sent and received over the session's connection
  std::chrono::steady_clock::time_point task_arrived;  // when the task's header came, before its model
};

class FatalError : public Error {
 public:
  using Error::Error;
};

// An error, finished or retry-later message ends the session: fills `result` and returns true (throws FatalError
// for an error retrying cannot fix). Any other message: false.
bool ends_session(const v1::Envelope& env, SessionResult& result, const std::function<void(const ClientEvent&)>& emit);

}  // namespace sotto::client
