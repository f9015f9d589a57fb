// ServerCredentials: what SIGHUP rotates without a restart — the round port's TLS context (the server's certificate
// and key, the client CA, the CRL, and the client-certificate policy auth.mode implies), the operators' HTTPS
// context when http.tls is set (the same certificate, no client certificate), and the Authenticator with the client
// tokens. A rotation builds all of them before it takes any, so it is all or nothing; it serves the connections
// made after it, and each earlier generation stays alive (a connection's TLS state refers to the context it was
// made with), one per rotation.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <deque>
#include <optional>

#include "aggregator/aggregator_config.h"
#include "aggregator/authenticator.h"

namespace sotto::aggregator {

class ServerCredentials {
 public:
  // Throws sotto::Error naming the file when a certificate, key, CA or CRL does not load.
  explicit ServerCredentials(const AggregatorConfig& config);

  // The context for a round connection accepted now.
  boost::asio::ssl::context& tls() { return generations_.back().rounds; }
  // The context for an operator's HTTPS connection accepted now; null when http.tls is off.
  boost::asio::ssl::context* https() {
    auto& https = generations_.back().https;
    return https ? &*https : nullptr;
  }
  // Always the same object, updated in place by rotate(): hold a reference to it.
  const Authenticator& authenticator() const { return authenticator_; }

  // Takes `fresh`'s credentials; throws sotto::Error, changing nothing, when its files do not load.
  void rotate(const AggregatorConfig& fresh);

 private:
  struct Generation {
    boost::asio::ssl::context rounds;
    std::optional<boost::asio::ssl::context> https;
  };
  static Generation load(const AggregatorConfig& config, bool https);

  std::deque<Generation> generations_;  // the current one last
  Authenticator authenticator_;
};

}  // namespace sotto::aggregator
