// UploadGate on a real io_context: uploads get in while their bytes fit, wait first come first served otherwise,
// and one upload always gets in however large; 0 lifts the budget.
#include "aggregator/upload_gate.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sotto::aggregator {
namespace {

namespace asio = boost::asio;

// Uploads that enter the gate and hold their pass until the test lets them go.
struct Uploads {
  asio::io_context io;
  UploadGate gate;
  std::vector<std::string> admitted;  // in order of admission
  std::vector<std::optional<UploadGate::Pass>> passes;

  explicit Uploads(std::size_t budget) : gate(budget) { passes.resize(8); }

  void start(int index, std::size_t bytes) {
    asio::co_spawn(
        io,
        [this, index, bytes]() -> asio::awaitable<void> {
          passes[index].emplace(co_await gate.enter(bytes));
          admitted.push_back(std::to_string(index));
        },
        asio::detached);
    io.restart();  // poll() returns with the context stopped once it runs out of work
    io.poll();
  }
  void finish(int index) {
    passes[index].reset();
    io.restart();  // poll() returns with the context stopped once it runs out of work
    io.poll();
  }
};

}  // namespace

TEST_CASE("the upload gate admits uploads while their bytes fit and the rest in arrival order", "[aggregator]") {
  Uploads u(100);
  u.start(0, 60);
  u.start(1, 60);  // would pass the budget: waits
  u.start(2, 10);  // fits, but an earlier upload waits: it queues behind it
  CHECK(u.admitted == std::vector<std::string>{"0"});
  CHECK(u.gate.waiting() == 2);
  u.finish(0);  // 60 + 10 fit now: both get in
  CHECK(u.admitted == std::vector<std::string>{"0", "1", "2"});
  CHECK(u.gate.inside_bytes() == 70);
  CHECK(u.gate.waiting() == 0);
  u.finish(1);
  u.finish(2);
  CHECK(u.gate.inside_bytes() == 0);
}

TEST_CASE("one upload always gets through the gate however large and 0 lifts the budget", "[aggregator]") {
  Uploads big(100);
  big.start(0, 500);
  big.start(1, 1);
  CHECK(big.admitted == std::vector<std::string>{"0"});
  big.finish(0);
  CHECK(big.admitted == std::vector<std::string>{"0", "1"});

  Uploads unlimited(0);
  for (int i = 0; i < 5; ++i) unlimited.start(i, std::size_t{1} << 40);
  CHECK(unlimited.admitted.size() == 5);
}

}  // namespace sotto::aggregator
