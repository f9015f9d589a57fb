// Authenticator: who a connection's client is. With mutual TLS the identity is the subject CN of the client
// certificate the handshake verified against server.ca_file; with a bearer token it is the client_id the hello
// names, if auth.client_tokens binds that id to the hello's token (compared in constant time). A token is bound to
// one client id, or to a set of ids by repeating it: whoever holds it can present those ids and no others, so one
// leaked token cannot fill a cohort with invented clients. auth.mode says which are accepted. A refusal says what
// the client must present.
#pragma once

#include <map>
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
  // `client_tokens`: client id -> its token.
  Authenticator(AuthMode mode, std::map<std::string, std::string> client_tokens)
      : mode_(mode), client_tokens_(std::move(client_tokens)) {}

  // `certificate_cn`: the verified client certificate's CN, empty when the client presented none.
  AuthOutcome authenticate(const std::string& certificate_cn, const v1::Hello& hello) const;

 private:
  bool token_matches(const std::string& client_id, const std::string& given) const;

  AuthMode mode_;
  std::map<std::string, std::string> client_tokens_;
};

// 1-128 characters of letters, digits, '-', '_', '.', ':'.
bool valid_client_id(const std::string& id);

}  // namespace sotto::aggregator
