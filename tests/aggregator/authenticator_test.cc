#include "aggregator/authenticator.h"

#include <catch2/catch.hpp>

namespace sotto::aggregator {
namespace {

v1::Hello hello(const std::string& id, const std::string& token) {
  v1::Hello h;
  h.set_client_id(id);
  h.set_auth_token(token);
  return h;
}

const std::string kToken = "0123456789abcdef-token";
const std::string kOtherToken = "fedcba9876543210-token";

// phone-1 and phone-2 share kToken; a.b:c_d-1 has kOtherToken.
const std::map<std::string, std::string> kBound = {
    {"phone-1", kToken}, {"phone-2", kToken}, {"a.b:c_d-1", kOtherToken}};

}  // namespace

TEST_CASE("a verified certificate's CN is the client's identity, whatever id the hello claims", "[aggregator][auth]") {
  const Authenticator mtls(AuthMode::kMutualTls, {});
  CHECK(mtls.authenticate("client-7", hello("someone-else", "")).client_id == "client-7");
  const Authenticator either(AuthMode::kMutualTlsOrToken, kBound);
  CHECK(either.authenticate("client-7", hello("someone-else", kToken)).client_id == "client-7");
}

TEST_CASE("a bound token admits the hello's client id and a wrong one or none is refused saying what to present",
          "[aggregator][auth]") {
  const Authenticator token(AuthMode::kToken, kBound);
  CHECK(token.authenticate("", hello("phone-1", kToken)).client_id == "phone-1");
  const auto wrong = token.authenticate("", hello("phone-1", kToken + "x"));
  CHECK_FALSE(wrong.client_id);
  CHECK_THAT(wrong.refusal, Catch::Contains("auth.client_tokens"));
  // In token mode a certificate does not stand in for the token.
  CHECK_FALSE(token.authenticate("client-1", hello("client-1", "")).client_id);
}

TEST_CASE("mutual TLS without a certificate is refused even with a listed token", "[aggregator][auth]") {
  const Authenticator mtls(AuthMode::kMutualTls, kBound);
  const auto outcome = mtls.authenticate("", hello("phone-1", kToken));
  CHECK_FALSE(outcome.client_id);
  CHECK_THAT(outcome.refusal, Catch::Contains("auth.mode = \"mtls\""));
}

TEST_CASE("client ids outside 1-128 letters, digits and -_.: are refused", "[aggregator][auth]") {
  const Authenticator either(AuthMode::kMutualTlsOrToken, kBound);
  CHECK_FALSE(either.authenticate("bad cn", hello("", "")).client_id);
  CHECK_FALSE(either.authenticate("", hello("", kToken)).client_id);
  CHECK_FALSE(either.authenticate("", hello(std::string(129, 'a'), kToken)).client_id);
  CHECK_FALSE(either.authenticate("", hello("a/b", kToken)).client_id);
  CHECK(either.authenticate("", hello("a.b:c_d-1", kOtherToken)).client_id == "a.b:c_d-1");
}

TEST_CASE("a token admits only the client ids it is bound to, so one token cannot fill a cohort with invented ids",
          "[aggregator][auth]") {
  const Authenticator token(AuthMode::kToken, kBound);
  CHECK(token.authenticate("", hello("phone-2", kToken)).client_id == "phone-2");  // a set of ids may share one
  for (const char* invented : {"phone-3", "sybil-1", "sybil-2"}) {
    const auto outcome = token.authenticate("", hello(invented, kToken));
    CHECK_FALSE(outcome.client_id);
    CHECK_THAT(outcome.refusal, Catch::Contains(invented));
  }
  CHECK_FALSE(token.authenticate("", hello("a.b:c_d-1", kToken)).client_id);  // another id's token
  CHECK_FALSE(token.authenticate("", hello("phone-1", "")).client_id);
}

}  // namespace sotto::aggregator
