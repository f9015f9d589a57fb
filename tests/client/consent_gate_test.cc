#include "client/consent_gate.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include "client/state_store.h"
#include "common/crypto/random.h"
#include "tests/support/test_support.h"

using namespace sotto::client;

TEST_CASE("consent gate: attach needs consent and narrowing or revoking it cuts the attached socket") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  ConsentGate gate(nullptr);
  CHECK_FALSE(gate.attach(fds[0], ConsentScope::kTraining));
  gate.grant(ConsentScope::kTraining);
  REQUIRE(gate.attach(fds[0], ConsentScope::kTraining));
  CHECK(gate.allows(fds[0]));
  CHECK(gate.while_granted([] {}));

  // Analytics only: the training connection is cut and nothing more is written for it.
  gate.grant(ConsentScope::kAnalytics);
  CHECK(gate.revocations() == 1);
  CHECK_FALSE(gate.allows(fds[0]));
  CHECK_FALSE(gate.while_granted([] {}));
  CHECK(::send(fds[0], "x", 1, MSG_NOSIGNAL) < 0);  // shut down: no byte leaves

  gate.detach(fds[0]);
  CHECK(gate.while_granted([] {}));  // analytics work may still write
  gate.revoke();
  CHECK(gate.revocations() == 2);
  CHECK_FALSE(gate.while_granted([] {}));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("consent gate: the state store's change callback runs after the gate's lock, and may ask for consent") {
  sotto::test::TempDir dir;
  StateStore store(dir.path(), sotto::crypto::random_secret<kStateKeyBytes>());
  ConsentGate gate(&store);
  std::vector<std::pair<std::uint64_t, bool>> told;  // generation, and consent as the callback read it
  store.on_change([&](std::uint64_t generation) { told.emplace_back(generation, gate.record().granted); });
  gate.grant(ConsentScope::kAll);
  CHECK(gate.while_granted([&] { store.write("ledger", "one entry"); }));
  gate.revoke();
  const std::vector<std::pair<std::uint64_t, bool>> expected{{1, true}, {2, true}, {3, false}};
  CHECK(told == expected);
}

TEST_CASE("consent gate: a callback reading consent on one thread while another writes under the gate does not "
          "deadlock") {
  sotto::test::TempDir dir;
  StateStore store(dir.path(), sotto::crypto::random_secret<kStateKeyBytes>());
  ConsentGate gate(&store);
  gate.grant(ConsentScope::kAll);
  std::promise<void> in_callback;
  std::atomic<bool> first{true};
  store.on_change([&](std::uint64_t) {
    if (!first.exchange(false)) return;
    in_callback.set_value();  // the writer below now takes the gate's lock and writes under it
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)gate.record();  // waits for the gate's lock, which the writer holds until its write is done
  });
  std::thread granting([&] { gate.grant(ConsentScope::kTraining); });
  in_callback.get_future().wait();
  CHECK(gate.while_granted([&] { store.write("ledger", "written while the callback waits"); }));
  granting.join();
  CHECK(store.generation() == 3);
}
