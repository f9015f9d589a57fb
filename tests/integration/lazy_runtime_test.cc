// LibTorch is loaded only when a process needs a model (common/ml/torch_runtime.h): a sotto-client that has not
// been admitted to a round has not loaded it and stays small; once admitted, it loads LibTorch, its data and its
// model while the cohort fills, before the task arrives.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

bool maps_libtorch(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find("libtorch_cpu") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a client loads LibTorch only once admitted, and before its task arrives", "[integration][startup]") {
  TempDir dir("lazy-runtime");
  const Pki pki = make_pki(dir / "pki", 2);

  // Nothing listens on port 1: the client backs off and retries, never admitted.
  ClientOptions waiting = mtls_client_options(pki, 1, 1);
  waiting.give_up_after_s = 0;
  auto unreachable =
      start_client(waiting.id, write_client_config(dir / "waiting.toml", waiting), dir / "waiting.log");
  REQUIRE(wait_until([&] { return unreachable->log_contains("aggregator not reachable"); }, 30s));
  CHECK_FALSE(maps_libtorch(unreachable->pid()));
  const long waiting_kib = resident_kib(unreachable->pid());
  INFO("resident KiB while waiting: " << waiting_kib);
  CHECK(waiting_kib > 0);
  CHECK(waiting_kib < 64 * 1024);  // LibTorch alone maps ~160 MiB
  unreachable->kill(SIGTERM);
  REQUIRE(unreachable->wait_for_exit(10s).has_value());

  // Admitted while the cohort of 2 is still filling: it gets ready before any task is sent.
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.total_rounds = 1;
  agg.cohort_target = 2;
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  ClientOptions first = mtls_client_options(pki, 1, port);
  first.max_examples = 100;
  auto client1 = start_client(first.id, write_client_config(dir / "client-1.toml", first), dir / "client-1.log");
  REQUIRE(wait_until([&] { return client1->log_contains("LibTorch, data and model ready"); }, 60s));
  INFO(client1->log_text());
  CHECK(maps_libtorch(client1->pid()));
  CHECK_FALSE(client1->log_contains("received the global model"));  // no task yet: the cohort is not full

  ClientOptions second = mtls_client_options(pki, 2, port);
  second.max_examples = 100;
  second.shard_index = 1;
  auto client2 = start_client(second.id, write_client_config(dir / "client-2.toml", second), dir / "client-2.log");
  CHECK(client1->wait_for_exit(120s) == 0);
  CHECK(client2->wait_for_exit(120s) == 0);
  CHECK(aggregator->wait_for_exit(60s) == 0);
  CHECK(read_jsonl(agg.state_dir / "rounds.jsonl").size() == 1);
}

}  // namespace sotto::test
