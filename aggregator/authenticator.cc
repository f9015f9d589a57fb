#include "aggregator/authenticator.h"

#include <openssl/crypto.h>

#include <cctype>

namespace sotto::aggregator {

bool valid_client_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char ch : id) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.' && ch != ':') return false;
  }
  return true;
}

// The client id's own token, compared in constant time, so that the time taken says nothing about how nearly it
// matched. An unknown id is compared against a token of its own length, so that it takes the same time.
bool Authenticator::token_matches(const std::string& client_id, const std::string& given) const {
  auto it = client_tokens_.find(client_id);
  const std::string& expected = it != client_tokens_.end() ? it->second : given;
  const bool equal = expected.size() == given.size() && CRYPTO_memcmp(expected.data(), given.data(), given.size()) == 0;
  return it != client_tokens_.end() && !given.empty() && equal;
}

AuthOutcome Authenticator::authenticate(const std::string& cn, const v1::Hello& hello) const {
  if (!cn.empty() && mode_ != AuthMode::kToken) {
    if (!valid_client_id(cn)) return {std::nullopt, "client certificate CN \"" + cn + "\" is not a valid client id"};
    return {cn, {}};
  }
  if (mode_ != AuthMode::kMutualTls && token_matches(hello.client_id(), hello.auth_token())) {
    if (!valid_client_id(hello.client_id())) {
      return {std::nullopt, "client_id must be 1-128 characters of letters, digits, '-', '_', '.', ':'"};
    }
    return {hello.client_id(), {}};
  }
  return {std::nullopt, mode_ == AuthMode::kMutualTls
                            ? "a client certificate signed by the aggregator's CA is required (auth.mode = \"mtls\")"
                            : "no client certificate, and the token is missing or not the one auth.client_tokens binds "
                              "to client_id \"" + hello.client_id().substr(0, 128) +
                                  "\": present a certificate signed by the aggregator's CA or this client's own token"};
}

}  // namespace sotto::aggregator
