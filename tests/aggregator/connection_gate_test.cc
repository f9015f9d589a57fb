#include "aggregator/connection_gate.h"

#include <catch2/catch.hpp>

#include <vector>

namespace sotto::aggregator {
namespace {

std::vector<ConnectionGate::Ticket> admit_n(ConnectionGate& gate, const std::string& address, int n) {
  std::vector<ConnectionGate::Ticket> tickets;
  for (int i = 0; i < n; ++i) {
    auto d = gate.admit(address);
    REQUIRE(d.admitted());
    tickets.push_back(std::move(d.ticket));
  }
  return tickets;
}

}  // namespace

TEST_CASE("the gate refuses an address's unauthenticated connection beyond its cap and names the key",
          "[aggregator][gate]") {
  ConnectionGate gate({100, 100, 100, 3});
  auto held = admit_n(gate, "10.0.0.1", 3);
  auto refused = gate.admit("10.0.0.1");
  CHECK_FALSE(refused.admitted());
  CHECK(refused.refusal.find("server.max_unauthenticated_per_address") != std::string::npos);
  CHECK(refused.refusal.find("3") != std::string::npos);
  CHECK(gate.admit("10.0.0.2").admitted());  // another address is not affected
  CHECK(gate.unauthenticated_from("10.0.0.1") == 3);
}

TEST_CASE("an authenticated connection frees its unauthenticated place but still counts as a connection",
          "[aggregator][gate]") {
  ConnectionGate gate({100, 4, 100, 2});
  auto held = admit_n(gate, "a", 2);
  held[0].authenticated();
  held[1].authenticated();
  CHECK(gate.unauthenticated() == 0);
  CHECK(gate.connections_from("a") == 2);
  auto more = admit_n(gate, "a", 2);
  auto refused = gate.admit("a");
  CHECK_FALSE(refused.admitted());
  CHECK(refused.refusal.find("server.max_connections_per_address") != std::string::npos);
}

TEST_CASE("the total caps hold across addresses", "[aggregator][gate]") {
  ConnectionGate gate({5, 0, 3, 0});
  auto a = admit_n(gate, "a", 2);
  auto b = admit_n(gate, "b", 1);
  auto refused = gate.admit("c");
  CHECK_FALSE(refused.admitted());
  CHECK(refused.refusal.find("server.max_unauthenticated") != std::string::npos);
  for (auto& t : a) t.authenticated();
  auto c = admit_n(gate, "c", 2);
  CHECK(gate.connections() == 5);
  auto full = gate.admit("d");
  CHECK_FALSE(full.admitted());
  CHECK(full.refusal.find("(server.max_connections)") != std::string::npos);
}

TEST_CASE("a released or destroyed ticket gives its place back, once", "[aggregator][gate]") {
  ConnectionGate gate({2, 2, 2, 2});
  {
    auto held = admit_n(gate, "a", 2);
    CHECK_FALSE(gate.admit("a").admitted());
    held[0].release();
    held[0].release();  // a second release is a no-op
    CHECK(gate.connections() == 1);
    auto moved = std::move(held[1]);
    CHECK(gate.connections() == 1);
  }
  CHECK(gate.connections() == 0);
  CHECK(gate.unauthenticated() == 0);
  CHECK(gate.connections_from("a") == 0);
  CHECK(admit_n(gate, "a", 2).size() == 2);
}

TEST_CASE("a cap of 0 is lifted", "[aggregator][gate]") {
  ConnectionGate gate({0, 0, 0, 0});
  CHECK(admit_n(gate, "127.0.0.1", 5000).size() == 5000);
}

}  // namespace sotto::aggregator
