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

}  // namespace

ServerCredentials::Generation ServerCredentials::load(const AggregatorConfig& c, bool https) {
  Generation g{net::make_server_context(
                   {c.cert_file, c.key_file, c.ca_file, client_certificate_policy(c.auth_mode), c.crl_file}),
               std::nullopt};
  if (https) {
    g.https.emplace(
        net::make_server_context({c.cert_file, c.key_file, c.ca_file, net::ClientCertificate::kNotRequested}));
  }
  return g;
}

ServerCredentials::ServerCredentials(const AggregatorConfig& config)
    : authenticator_(config.auth_mode, config.client_tokens) {
  generations_.push_back(load(config, config.http.enabled && config.http.tls));
}

void ServerCredentials::rotate(const AggregatorConfig& fresh) {
  // http.tls itself changes only with a restart.
  Generation next = load(fresh, generations_.back().https.has_value());
  Authenticator authenticator(fresh.auth_mode, fresh.client_tokens);
  // Nothing above changed this object; nothing below throws.
  generations_.push_back(std::move(next));
  authenticator_ = std::move(authenticator);
}

}  // namespace sotto::aggregator
