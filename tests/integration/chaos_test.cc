// Chaos: a seeded run of secure rounds in which the aggregator is SIGKILLed in each phase in turn — check-in, each
// SecAgg+ step (the clients train inside the masked-input step), recording (aggregation done, the round's line not
// yet written) and the checkpoint write — a few milliseconds after the test sees it enter that phase (on /status,
// or for the checkpoint write by its temporary file), and restarted on the same state directory, while clients
// are SIGKILLed at random moments too and started again. The invariants: every
// completed round is in rounds.jsonl exactly once, in order; the checkpoint loads and holds the last completed
// round's model, bit for bit; the clients that were never killed carry on through every aggregator restart on their
// own; every client ends the training. SOTTO_CHAOS_SEED and SOTTO_CHAOS_TRIALS (default 1 and 4) make it longer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/codec/model_file.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr int kClients = 4;
constexpr std::uint64_t kRounds = 8;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

// The aggregator's last log line: where it was when it died.
std::string last_line(const Process& p) {
  std::string text = p.log_text();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto cut = text.rfind('\n');
  return cut == std::string::npos ? text : text.substr(cut + 1);
}

// GET http://127.0.0.1:PORT/PATH, the whole response; empty when the daemon does not answer.
std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string response;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
      response.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return response;
}

// The phase /status shows: "check-in", "recording", ... or, in a secure round's training, its step ("advertise",
// "share_keys", "masked_input", "unmask").
std::string phase_of(const std::string& page) {
  const auto text_after = [&](const std::string& open, char close) -> std::string {
    const auto at = page.find(open);
    if (at == std::string::npos) return {};
    const auto from = at + open.size();
    return page.substr(from, page.find(close, from) - from);
  };
  const std::string phase = text_after("<span id=\"phase\">", '<');
  const std::string step = phase == "training" ? text_after("secure aggregation step ", ':') : std::string();
  return step.empty() ? phase : step;
}

// Every phase a kill is aimed at, in turn; "checkpoint write" is seen by checkpoint.sotto.tmp, the rest on /status.
const std::vector<std::string> kTargets = {"check-in", "advertise", "share_keys", "masked_input",
                                           "unmask",   "recording", "checkpoint write"};

enum class Aim { kInPhase, kTimedOut, kEnded };

// Waits until the aggregator is in `target`, `patience` passed, or the training ended (or the aggregator died).
Aim wait_for_phase(const std::string& target, const fs::path& state_dir, std::uint16_t http_port,
                    Process& aggregator, std::chrono::seconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (int polls = 0; std::chrono::steady_clock::now() < give_up; ++polls) {
    if (target == "checkpoint write") {
      if (fs::exists(state_dir / "checkpoint.sotto.tmp")) return Aim::kInPhase;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    } else {
      if (phase_of(http_get(http_port, "/status")) == target) return Aim::kInPhase;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (polls % 256 == 0 && (!aggregator.running() || read_jsonl(state_dir / "rounds.jsonl").size() >= kRounds)) {
      return Aim::kEnded;
    }
  }
  return Aim::kTimedOut;
}

}  // namespace

TEST_CASE("chaos: SIGKILLs of the aggregator and of clients at random moments lose and duplicate no round",
          "[integration][chaos]") {
  const std::uint64_t seed = env_or("SOTTO_CHAOS_SEED", 1), trials = env_or("SOTTO_CHAOS_TRIALS", 4);
  std::mt19937_64 chaos(seed);  // schedules the kills only: nothing secret
  TempDir dir("chaos");
  const Pki pki = make_pki(dir / "pki", kClients);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.port = pick_free_port();
  agg.total_rounds = kRounds;
  agg.cohort_target = kClients;
  agg.cohort_min = 3;
  agg.checkin_window_s = 2;
  agg.extra_toml = "[secure_aggregation]\nenabled = true\nstep_deadline_s = 10\n\n[http]\nenabled = true\nport = 0\n";
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", agg);
  int restarts = 0;
  std::uint16_t http_port = 0;
  auto start = [&] {
    fs::remove(agg.state_dir / "port");
    fs::remove(agg.state_dir / "http_port");
    auto p = start_aggregator(config, dir / ("aggregator-" + std::to_string(++restarts) + ".log"));
    REQUIRE(wait_for_port(agg.state_dir, 60s, p.get()) == agg.port);
    http_port = wait_for_http_port(agg.state_dir);
    REQUIRE(http_port != 0);
    return p;
  };
  auto aggregator = start();
  std::vector<fs::path> client_configs;
  std::vector<std::unique_ptr<Process>> clients;
  std::vector<int> lives(kClients, 1);
  auto start_client_number = [&](int i) {
    return start_client("client-" + std::to_string(i + 1), client_configs[i],
                        dir / ("client-" + std::to_string(i + 1) + "-" + std::to_string(lives[i]) + ".log"));
  };
  for (int i = 0; i < kClients; ++i) {
    ClientOptions c = mtls_client_options(pki, i + 1, agg.port);
    c.num_shards = kClients;
    c.shard_index = static_cast<std::uint32_t>(i);
    c.max_examples = 1500;  // rounds of a second or two: the kills land inside them
    c.state_dir = dir / c.id;
    c.save_local_models = false;
    client_configs.push_back(write_client_config(dir / (c.id + ".toml"), c));
    clients.push_back(start_client_number(i));
  }

  std::set<int> killed_clients;
  std::map<std::string, int> hits;  // kills that landed in the phase they were aimed at
  int missed = 0;
  for (std::uint64_t t = 0; t < trials; ++t) {
    if (read_jsonl(agg.state_dir / "rounds.jsonl").size() >= kRounds) break;
    const std::string& target = kTargets[(seed + t) % kTargets.size()];
    const Aim aim = wait_for_phase(target, agg.state_dir, http_port, *aggregator, 5s);
    if (aim == Aim::kEnded) break;
    if (aim == Aim::kInPhase) {
      ++hits[target];
      // Within the phase: at once for the short ones (recording, the checkpoint write), up to 20 ms into the others.
      if (target != "checkpoint write" && target != "recording") {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 20)(chaos)));
      }
    } else {
      ++missed;  // not seen within the patience: killed wherever it is
    }
    // A client dies too, and its app starts it again; not near the end, where the restarted one would find the
    // aggregator gone for good.
    const bool rounds_left = read_jsonl(agg.state_dir / "rounds.jsonl").size() + 2 <= kRounds;
    if (chaos() % 2 == 0 && rounds_left) {
      const int i = static_cast<int>(chaos() % kClients);
      if (clients[i]->running()) {
        clients[i]->kill(SIGKILL);
        clients[i]->wait_for_exit(10s);
        ++lives[i];
        killed_clients.insert(i);
        clients[i] = start_client_number(i);
      }
    }
    if (!aggregator->running()) break;
    UNSCOPED_INFO("trial " << t << ": aimed at " << target << ", aggregator killed after \"" << last_line(*aggregator)
                            << "\"");
    aggregator->kill(SIGKILL);
    REQUIRE(aggregator->wait_for_exit(10s) == 128 + SIGKILL);
    aggregator = start();
  }

  for (int i = 0; i < kClients; ++i) {
    INFO(clients[i]->name() << " log:\n" << clients[i]->log_text());
    REQUIRE(clients[i]->wait_for_exit(300s) == 0);
    if (!killed_clients.count(i)) CHECK(clients[i]->log_contains("training finished"));
  }
  INFO("aggregator log:\n" << aggregator->log_text());
  REQUIRE(aggregator->wait_for_exit(60s) == 0);

  std::string phases;
  for (const auto& [phase, count] : hits) phases += " " + phase + " " + std::to_string(count) + ",";
  WARN("chaos seed " << seed << ": " << restarts - 1 << " aggregator kills (in the phase aimed at:" << phases
                     << " missed " << missed << "), " << killed_clients.size() << " clients killed");
  CHECK(restarts - 1 >= 2);  // the chaos did happen before the training ended
  CHECK(!hits.empty());      // and the aim works
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  std::uint64_t completed = 0, last_round = 0, last_completed_round = 0;
  for (const auto& line : rounds) {
    const std::uint64_t round = line.at("round");
    CHECK(round > last_round);  // no round twice, none out of order
    last_round = round;
    if (line.at("status") != "completed") continue;
    CHECK(line.at("completed_rounds") == ++completed);  // none lost
    last_completed_round = round;
  }
  CHECK(completed == kRounds);
  const auto checkpoint = codec::read_model_file(agg.state_dir / "checkpoint.sotto");
  CHECK(checkpoint.completed_rounds == kRounds);
  CHECK(checkpoint.model ==
        codec::read_model_file(agg.state_dir / ("model-round-" + std::to_string(last_completed_round) + ".sotto"))
            .model);
}

}  // namespace sotto::test
