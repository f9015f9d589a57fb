// Authenticator: who a connection's client is. With mutual TLS the identity is the subject CN of the client
// certificate the handshake verified against server.ca_file; with a bearer token it is the client_id the hello
// names, if the hello's token is one of auth.tokens (compared in constant time). auth.mode says which are
// accepted. A refusal says what the client must present.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sotto/v1/sotto.pb.h"

namespace sotto::aggregator {

enum class AuthMode { kMutualTls, kToken, kMutualTlsOrToken };

struct AuthOutcome {
  std::optional<std::string> client_id;  // set when authenticated
  std::string refusal;                   // else: why, for the UNAUTHENTICATED error frame
};

class Authenticator {
 public:
  Authenticator(AuthMode mode, std::vector<std::string> tokens) : mode_(mode), tokens_(std::move(tokens)) {}

  // `certificate_cn`: the verified client certificate's CN, empty when the client presented none.
  AuthOutcome authenticate(const std::string& certificate_cn, const v1::Hello& hello) const;

 private:
  bool token_matches(const std::string& given) const;

  AuthMode mode_;
  std::vector<std::string> tokens_;
};

// 1-128 characters of letters, digits, '-', '_', '.', ':'.
bool valid_client_id(const std::string& id);

}  // namespace sotto::aggregator
