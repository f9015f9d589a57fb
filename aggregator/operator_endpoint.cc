#include "aggregator/operator_endpoint.h"

#include <spdlog/spdlog.h>

#include <fstream>

#include "aggregator/status_page.h"
#include "common/util/error.h"
#include "common/util/json_lines.h"

namespace sotto::aggregator {

OperatorEndpoint::OperatorEndpoint(boost::asio::io_context& io, const AggregatorConfig& config,
                                   boost::asio::ssl::context* https, Sources sources)
    : sources_(std::move(sources)), rounds_file_(config.state_dir / "rounds.jsonl"), https_(https) {
  const auto& h = config.http;
  http_ = std::make_unique<HttpEndpoint>(
      io, h.listen_address, h.port, h.bearer_token, [this](std::string_view path) { return respond(path); }, https_);
  std::ofstream(config.state_dir / "http_port") << http_->port() << '\n';
  spdlog::info("serving /status, /metrics, /healthz and /readyz over {} on {}:{}{}", https_ ? "HTTPS" : "HTTP",
               h.listen_address, http_->port(), h.bearer_token.empty() ? "" : " (bearer token required)");
  http_->start();
}

HttpEndpoint::Response OperatorEndpoint::respond(std::string_view path) const {
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", sources_.metrics->text()};
  if (path == "/status" || path == "/") return status_page();
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/readyz") {
    const bool stopping = sources_.stopping();
    if (sources_.coordinator() && !stopping) return {200, "text/plain; charset=utf-8", "ready\n"};
    return {503, "text/plain; charset=utf-8",
            stopping ? "stopping\n" : "starting: checking the checkpoint, not admitting clients yet\n"};
  }
  return {404, "text/plain; charset=utf-8", "not found; try /status, /metrics, /healthz or /readyz\n"};
}

HttpEndpoint::Response OperatorEndpoint::status_page() const {
  std::vector<nlohmann::json> rounds;
  try {
    rounds = util::read_json_lines(rounds_file_);
  } catch (const Error& e) {  // a damaged log: say so on the page's place rather than fail the request
    return {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
  }
  const RoundCoordinator* coordinator = sources_.coordinator();
  const auto progress = coordinator ? std::optional(coordinator->progress()) : std::nullopt;
  return {200, "text/html; charset=utf-8", render_status_page(progress ? &*progress : nullptr, rounds)};
}

}  // namespace sotto::aggregator
