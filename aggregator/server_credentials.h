// ServerCredentials: what SIGHUP rotates without a restart — the server's TLS context (its certificate and key, the
// client CA, the CRL, and the client-certificate policy auth.mode implies) and the Authenticator with the client
// tokens. A rotation serves the connections made after it; each earlier context stays alive (a connection's TLS
// state refers to the context it was made with), one per rotation.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <deque>

#include "aggregator/aggregator_config.h"
#include "aggregator/authenticator.h"

namespace sotto::aggregator {

class ServerCredentials {
 public:
  // Throws sotto::Error naming the file when a certificate, key, CA or CRL does not load.
  explicit ServerCredentials(const AggregatorConfig& config);

  // The context for a connection accepted now.
  boost::asio::ssl::context& tls() { return contexts_.back(); }
  // Always the same object, updated in place by rotate(): hold a reference to it.
  const Authenticator& authenticator() const { return authenticator_; }

  // Takes `fresh`'s credentials; throws sotto::Error, changing nothing, when its files do not load.
  void rotate(const AggregatorConfig& fresh);

 private:
  std::deque<boost::asio::ssl::context> contexts_;  // the current one last
  Authenticator authenticator_;
};

}  // namespace sotto::aggregator
