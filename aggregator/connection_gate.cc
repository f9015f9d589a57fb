#include "aggregator/connection_gate.h"

#include <utility>

namespace sotto::aggregator {

namespace {

bool at_cap(std::size_t count, std::size_t cap) {
  return cap != 0 && count >= cap;
}

std::string refusal(const std::string& what, std::size_t cap, const std::string& key) {
  return "the aggregator holds its limit of " + std::to_string(cap) + " " + what + " (" + key +
         "); retry later, or raise " + key;
}

}  // namespace

ConnectionGate::Ticket::Ticket(Ticket&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)),
      address_(std::move(other.address_)),
      authenticated_(other.authenticated_) {}

ConnectionGate::Ticket& ConnectionGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    gate_ = std::exchange(other.gate_, nullptr);
    address_ = std::move(other.address_);
    authenticated_ = other.authenticated_;
  }
  return *this;
}

void ConnectionGate::Ticket::authenticated() {
  if (!gate_ || authenticated_) return;
  authenticated_ = true;
  gate_->on_authenticated(address_);
}

void ConnectionGate::Ticket::release() {
  if (!gate_) return;
  std::exchange(gate_, nullptr)->on_release(address_, authenticated_);
}

ConnectionGate::Decision ConnectionGate::admit(const std::string& address) {
  const PerAddress from = by_address_.contains(address) ? by_address_.at(address) : PerAddress{};
  Decision d;
  if (at_cap(connections_, limits_.max_connections)) {
    d.refusal = refusal("connections", limits_.max_connections, "server.max_connections");
  } else if (at_cap(unauthenticated_, limits_.max_unauthenticated)) {
    d.refusal = refusal("connections that have not said hello", limits_.max_unauthenticated,
                        "server.max_unauthenticated");
  } else if (at_cap(from.connections, limits_.max_connections_per_address)) {
    d.refusal = refusal("connections from " + address, limits_.max_connections_per_address,
                        "server.max_connections_per_address");
  } else if (at_cap(from.unauthenticated, limits_.max_unauthenticated_per_address)) {
    d.refusal = refusal("connections from " + address + " that have not said hello",
                        limits_.max_unauthenticated_per_address, "server.max_unauthenticated_per_address");
  } else {
    auto& entry = by_address_[address];
    ++entry.connections;
    ++entry.unauthenticated;
    ++connections_;
    ++unauthenticated_;
    d.ticket = Ticket(this, address);
  }
  return d;
}

std::size_t ConnectionGate::connections_from(const std::string& address) const {
  auto it = by_address_.find(address);
  return it == by_address_.end() ? 0 : it->second.connections;
}

std::size_t ConnectionGate::unauthenticated_from(const std::string& address) const {
  auto it = by_address_.find(address);
  return it == by_address_.end() ? 0 : it->second.unauthenticated;
}

void ConnectionGate::on_authenticated(const std::string& address) {
  --unauthenticated_;
  --by_address_.at(address).unauthenticated;
}

void ConnectionGate::on_release(const std::string& address, bool authenticated) {
  --connections_;
  if (!authenticated) --unauthenticated_;
  auto it = by_address_.find(address);
  --it->second.connections;
  if (!authenticated) --it->second.unauthenticated;
  if (it->second.connections == 0) by_address_.erase(it);
}

}  // namespace sotto::aggregator
