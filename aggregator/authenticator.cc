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

// Every token is compared, in constant time, so that the time taken says nothing about which one nearly matched.
bool Authenticator::token_matches(const std::string& given) const {
  bool ok = false;
  for (const auto& t : tokens_) {
    if (t.size() == given.size() && CRYPTO_memcmp(t.data(), given.data(), t.size()) == 0) ok = true;
  }
  return ok;
}

AuthOutcome Authenticator::authenticate(const std::string& cn, const v1::Hello& hello) const {
  if (!cn.empty() && mode_ != AuthMode::kToken) {
    if (!valid_client_id(cn)) return {std::nullopt, "client certificate CN \"" + cn + "\" is not a valid client id"};
    return {cn, {}};
  }
  if (mode_ != AuthMode::kMutualTls && token_matches(hello.auth_token())) {
    if (!valid_client_id(hello.client_id())) {
      return {std::nullopt, "client_id must be 1-128 characters of letters, digits, '-', '_', '.', ':'"};
    }
    return {hello.client_id(), {}};
  }
  return {std::nullopt, mode_ == AuthMode::kMutualTls
                            ? "a client certificate signed by the aggregator's CA is required (auth.mode = \"mtls\")"
                            : "unknown or missing auth token, and no client certificate: present a certificate signed "
                              "by the aggregator's CA or a token listed in auth.tokens"};
}

}  // namespace sotto::aggregator
