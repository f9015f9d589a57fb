// ConnectionGate: how many connections the aggregator holds, and from where. Every accepted TCP connection asks
// the gate for a ticket before the server spends a TLS handshake on it; the ticket counts the connection as
// unauthenticated until the client's hello is accepted, then as authenticated, until it closes.
//
// Four caps bound what a crowd of peers that never authenticate can hold: connections in all and per source
// address, and unauthenticated ones in all and per source address (server.max_connections,
// server.max_connections_per_address, server.max_unauthenticated, server.max_unauthenticated_per_address;
// 0 lifts a cap). A refusal names the cap that was hit and the key that raises it. The gate has no sockets and no
// clock: the server asks, the gate answers.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace sotto::aggregator {

struct ConnectionLimits {
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 64;
  std::size_t max_unauthenticated = 256;
  std::size_t max_unauthenticated_per_address = 16;
};

class ConnectionGate {
 public:
  // One admitted connection's place at the gate; giving it back (release() or destruction) frees the place.
  class Ticket {
   public:
    Ticket() = default;
    ~Ticket() { release(); }
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

    // The connection's client said a valid hello: it no longer counts as unauthenticated.
    void authenticated();
    void release();
    bool held() const { return gate_ != nullptr; }

   private:
    friend class ConnectionGate;
    Ticket(ConnectionGate* gate, std::string address) : gate_(gate), address_(std::move(address)) {}
    ConnectionGate* gate_ = nullptr;
    std::string address_;
    bool authenticated_ = false;
  };

  // Either a ticket, or why the connection is refused (the cap, its value, and the key that raises it).
  struct Decision {
    Ticket ticket;
    std::string refusal;
    bool admitted() const { return ticket.held(); }
  };

  explicit ConnectionGate(ConnectionLimits limits) : limits_(limits) {}
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // A new connection from `address` (an IP address, without the port).
  Decision admit(const std::string& address);

  std::size_t connections() const { return connections_; }
  std::size_t unauthenticated() const { return unauthenticated_; }
  std::size_t connections_from(const std::string& address) const;
  std::size_t unauthenticated_from(const std::string& address) const;
  const ConnectionLimits& limits() const { return limits_; }

 private:
  struct PerAddress {
    std::size_t connections = 0;
    std::size_t unauthenticated = 0;
  };

  void on_authenticated(const std::string& address);
  void on_release(const std::string& address, bool authenticated);

  ConnectionLimits limits_;
  std::size_t connections_ = 0;
  std::size_t unauthenticated_ = 0;
  std::map<std::string, PerAddress> by_address_;
};

}  // namespace sotto::aggregator
