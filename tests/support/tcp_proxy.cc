#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sotto::test {

namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(std::uint16_t target_port) : target_port_(target_port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  socklen_t length = sizeof a;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener_, 16) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &length) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("TcpProxy: cannot listen: ") + std::strerror(errno));
  }
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { relay(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  const char byte = 0;
  [[maybe_unused]] const auto ignored = ::write(wake_[1], &byte, 1);
  thread_.join();
  for (auto& p : pairs_) close_pair(p);
  ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void TcpProxy::record(Event e) {
  std::lock_guard lock(mutex_);
  events_.push_back(std::move(e));
}

void TcpProxy::mark(const std::string& label) {
  record({Seen::kMarker, 0, 0, label});
}

std::vector<TcpProxy::Event> TcpProxy::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::vector<TcpProxy::Event> TcpProxy::events_after(const std::string& label) const {
  const auto all = events();
  const auto marker = std::find_if(all.begin(), all.end(),
                                   [&](const Event& e) { return e.what == Seen::kMarker && e.label == label; });
  return {marker == all.end() ? all.begin() : marker + 1, all.end()};
}

int TcpProxy::connections_accepted() const {
  const auto all = events();
  return static_cast<int>(std::count_if(all.begin(), all.end(), [](const Event& e) { return e.what == Seen::kAccepted; }));
}

std::uint64_t TcpProxy::bytes_seen(Seen what, int connection) const {
  std::uint64_t total = 0;
  for (const Event& e : events()) {
    if (e.what == what && e.connection == connection) total += e.bytes;
  }
  return total;
}

void TcpProxy::close_pair(Pair& p) {
  if (p.client >= 0) ::close(p.client);
  if (p.server >= 0) ::close(p.server);
  p.client = p.server = -1;
}

// One thread, poll(): the listener, the wake pipe, and both ends of every pair.
void TcpProxy::relay() {
  int next_id = 1;
  char buffer[65536];
  while (!stopping_) {
    std::vector<pollfd> fds{{listener_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    for (const auto& p : pairs_) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    const std::size_t polled = pairs_.size();  // a pair accepted below has no entry in fds yet
    if (fds[0].revents & POLLIN) {
      Pair p{::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC), -1, next_id};
      if (p.client >= 0) {
        record({Seen::kAccepted, next_id++, 0, {}});
        p.server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_in target = loopback(target_port_);
        if (::connect(p.server, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
          close_pair(p);
        } else {
          pairs_.push_back(p);
        }
      }
    }
    for (std::size_t i = 0; i < polled; ++i) {
      Pair& p = pairs_[i];
      for (const bool from_client : {true, false}) {
        if (p.client < 0 || !(fds[2 + 2 * i + (from_client ? 0 : 1)].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::recv(from_client ? p.client : p.server, buffer, sizeof buffer, 0);
        if (n > 0) record({from_client ? Seen::kClientBytes : Seen::kServerBytes, p.id, static_cast<std::size_t>(n), {}});
        if (n <= 0 || !send_all(from_client ? p.server : p.client, buffer, static_cast<std::size_t>(n))) {
          if (from_client) record({Seen::kClientClosed, p.id, 0, {}});
          close_pair(p);
        }
      }
    }
    std::erase_if(pairs_, [](const Pair& p) { return p.client < 0; });
  }
}

}  // namespace sotto::test
