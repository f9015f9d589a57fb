#include "aggregator/server_credentials.h"

#include "common/net/tls_context.h"

namespace sotto::aggregator {

namespace {

net::ClientCertificate client_certificate_policy(AuthMode mode) {
  switch (mode) {
    case AuthMode::kMutualTls:
      return net::ClientCertificate::kRequired;
    case AuthMode::kToken:
      return net::ClientCertificate::kNotRequested;
    case AuthMode::kMutualTlsOrToken:
      break;
  }
  return net::ClientCertificate::kOptional;
}

boost::asio::ssl::context make_context(const AggregatorConfig& c) {
  return net::make_server_context(
      {c.cert_file, c.key_file, c.ca_file, client_certificate_policy(c.auth_mode), c.crl_file});
}

}  // namespace

ServerCredentials::ServerCredentials(const AggregatorConfig& config)
    : authenticator_(config.auth_mode, config.client_tokens) {
  contexts_.push_back(make_context(config));
}

void ServerCredentials::rotate(const AggregatorConfig& fresh) {
  contexts_.push_back(make_context(fresh));
  authenticator_ = Authenticator(fresh.auth_mode, fresh.client_tokens);
}

}  // namespace sotto::aggregator
