// OperatorEndpoint: what the daemon serves its operators when [http] enables it — /status (status_page.h),
// /metrics (metrics.h), /healthz and /readyz — on an HttpEndpoint, over HTTPS when http.tls is set, with the context
// ServerCredentials (server_credentials.h) makes from the server's certificate. It reads the server's state through the sources it is given, on the daemon's event loop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include "aggregator/aggregator_config.h"
#include "aggregator/http_endpoint.h"
#include "aggregator/metrics.h"

namespace sotto::aggregator {

class OperatorEndpoint {
 public:
  struct Sources {
    const AggregatorMetrics* metrics = nullptr;
    std::function<const RoundCoordinator*()> coordinator;  // null while the daemon starts
    std::function<bool()> stopping;
  };

  // Listens, over HTTPS with `https` when it is not null, and writes the port to <state_dir>/http_port. Throws
  // sotto::Error when it cannot (a bad address, a port in use).
  OperatorEndpoint(boost::asio::io_context& io, const AggregatorConfig& config, boost::asio::ssl::context* https,
                   Sources sources);
  // SIGHUP: `https` (the rotated ServerCredentials::https(), which outlives this endpoint) serves the HTTPS
  // connections accepted from now on. Plain HTTP stays plain: http.tls changes only with a restart.
  void use_certificate(boost::asio::ssl::context* https) {
    if (!https_ || !https) return;
    https_ = https;
    http_->use_tls(*https_);
  }
  void close() { http_->close(); }

 private:
  HttpEndpoint::Response respond(std::string_view path) const;
  HttpEndpoint::Response status_page() const;

  Sources sources_;
  std::filesystem::path rounds_file_;
  boost::asio::ssl::context* https_;  // null: plain HTTP
  std::unique_ptr<HttpEndpoint> http_;
};

}  // namespace sotto::aggregator
