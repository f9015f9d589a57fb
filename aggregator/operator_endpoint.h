// OperatorEndpoint: what the daemon serves its operators when [http] enables it — /status (status_page.h),
// /metrics (metrics.h), /healthz and /readyz — on an HttpEndpoint, over HTTPS with the server's certificate when
// http.tls is set. It reads the server's state through the sources it is given, on the daemon's event loop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <deque>
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

  // Listens, and writes the port to <state_dir>/http_port. Throws sotto::Error when it cannot (a bad address, a port
  // in use, an unreadable certificate).
  OperatorEndpoint(boost::asio::io_context& io, const AggregatorConfig& config, Sources sources);
  // SIGHUP: with http.tls, the server certificate and key of `fresh` serve the HTTPS connections accepted from now
  // on (each earlier context stays alive for the connections made with it). Throws sotto::Error when they cannot be
  // read, changing nothing.
  void reload_certificate(const AggregatorConfig& fresh);
  void close() { http_->close(); }

 private:
  HttpEndpoint::Response respond(std::string_view path) const;
  HttpEndpoint::Response status_page() const;

  Sources sources_;
  std::filesystem::path rounds_file_;
  std::deque<boost::asio::ssl::context> tls_;  // the current one last; empty: plain HTTP
  std::unique_ptr<HttpEndpoint> http_;
};

}  // namespace sotto::aggregator
