#include "aggregator/listener.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/util/error.h"

namespace sotto::aggregator {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kMinBackoff = std::chrono::milliseconds(5);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);
constexpr std::size_t kMaxShedPerAttempt = 256;

// Failures that retrying at once cannot cure: the process or the kernel is out of something.
bool out_of_resources(const boost::system::error_code& ec) {
  const int v = ec.value();
  return ec.category() == boost::system::system_category() &&
         (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
}

bool out_of_descriptors(const boost::system::error_code& ec) {
  return ec.category() == boost::system::system_category() && (ec.value() == EMFILE || ec.value() == ENFILE);
}

}  // namespace

Listener::Listener(asio::io_context& io, const std::string& address, std::uint16_t port)
    : io_(io), acceptor_(io), backoff_timer_(io) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw Error("server.listen_address \"" + address + "\" is not an IP address");
  const tcp::endpoint endpoint(ip, port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint, ec);
  if (ec) {
    throw Error("cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message() +
                " (is another aggregator running? change server.port)");
  }
  acceptor_.listen(asio::socket_base::max_listen_connections);
  open_reserve();
}

Listener::~Listener() {
  close();
}

std::uint16_t Listener::port() const {
  return acceptor_.local_endpoint().port();
}

void Listener::start(OnAccept on_accept) {
  on_accept_ = std::move(on_accept);
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

void Listener::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
  close_reserve();
}

asio::awaitable<void> Listener::accept_loop() {
  auto backoff = kMinBackoff;
  while (!closed_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (closed_) break;
    if (!ec) {
      backoff = kMinBackoff;
      on_accept_(std::move(socket));
      continue;
    }
    ++accept_failures_;
    if (!out_of_resources(ec)) {  // e.g. a connection reset before it was accepted: nothing to wait for
      spdlog::debug("accept failed: {}", ec.message());
      continue;
    }
    on_accept_error(ec, backoff);
    backoff_timer_.expires_after(backoff);
    co_await backoff_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

void Listener::on_accept_error(const boost::system::error_code& ec, std::chrono::milliseconds backoff) {
  const std::size_t shed = out_of_descriptors(ec) ? shed_backlog() : 0;
  shed_ += shed;
  if (auto untold = throttle_.admit(log::LogThrottle::Clock::now())) {
    spdlog::error(
        "accept failed: {} ({} more failures since the last report; {} waiting connections closed unserved, {} in "
        "all); retrying in {} ms. Raise the file-descriptor limit or lower server.max_connections",
        ec.message(), *untold, shed, shed_, backoff.count());
  }
}

// With the reserve descriptor given back, accept what waits in the backlog and close it at once.
std::size_t Listener::shed_backlog() {
  close_reserve();
  std::size_t shed = 0;
  while (shed < kMaxShedPerAttempt) {
    const int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    ::close(fd);
    ++shed;
  }
  open_reserve();
  return shed;
}

void Listener::open_reserve() {
  if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Listener::close_reserve() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
  reserve_fd_ = -1;
}

}  // namespace sotto::aggregator
