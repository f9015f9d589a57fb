// Federated analytics end to end: ten sotto-client processes contribute integer vectors to a secure sum over TLS,
// three of them vanishing at different SecAgg+ steps. The aggregator publishes only the sum and who is in it; it
// must equal the sum of exactly those clients' files.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "tests/support/test_support.h"

namespace sotto::test {

TEST_CASE("secure sum: the published sum equals the sum of the surviving clients' files", "[integration][secagg]") {
  constexpr int kClients = 10;
  constexpr int kLength = 16;
  TempDir dir("secure-sum");
  const Pki pki = make_pki(dir / "pki", kClients);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.total_rounds = 1;
  agg.cohort_target = kClients;
  agg.cohort_min = 3;
  agg.extra_toml = "[task]\nkind = \"secure_sum\"\nsecure_sum_length = " + std::to_string(kLength) +
                   "\n[secure_aggregation]\nenabled = true\ndropout_rate = 0.3\nstep_deadline_s = 20\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());

  // Client 1 vanishes after advertising its keys, client 2 after sharing them, client 3 after sending its masked
  // input (so its input is in the sum); the other seven finish the round.
  const std::map<int, std::string> vanish = {{1, "advertise"}, {2, "share_keys"}, {3, "masked_input"}};
  std::map<std::string, std::vector<std::int64_t>> files;
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= kClients; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.save_local_models = false;
    if (vanish.count(i)) c.extra_toml = "[fault_injection]\nvanish_after = \"" + vanish.at(i) + "\"\n";
    std::vector<std::int64_t> values;
    std::ofstream out(dir / (c.id + ".txt"));
    for (int j = 0; j < kLength; ++j) {
      values.push_back((i * 1000 + j * 37) * (j % 3 == 0 ? -1 : 1));  // negatives wrap mod 2^32
      out << values.back() << (j % 4 == 3 ? "\n" : " ");
    }
    out.close();  // before the client starts: it reads the file at once
    files[c.id] = values;
    const auto config = write_client_config(dir / (c.id + ".toml"), c);
    clients.push_back(std::make_unique<Process>(
        c.id,
        std::vector<std::string>{bin_path("sotto-client").string(), "--config", config.string(), "--contribute",
                                 (dir / (c.id + ".txt")).string()},
        dir / (c.id + ".log")));
  }
  for (int i = 1; i <= kClients; ++i) {
    const auto code = clients[i - 1]->wait_for_exit(120s);
    INFO(clients[i - 1]->name() << " log:\n" << clients[i - 1]->log_text());
    REQUIRE(code == (vanish.count(i) ? 97 : 0));
  }
  REQUIRE(aggregator->wait_for_exit(30s) == 0);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 1);
  const auto& r = rounds[0];
  INFO(r.dump());
  REQUIRE(r.at("status") == "completed");
  std::set<std::string> contributors;
  for (const auto& c : r.at("contributors")) contributors.insert(c.get<std::string>());
  std::set<std::string> expected;
  for (int i = 3; i <= kClients; ++i) expected.insert("client-" + std::to_string(i));
  CHECK(contributors == expected);
  std::vector<std::uint32_t> sum(kLength, 0);
  for (const auto& id : contributors) {
    for (int j = 0; j < kLength; ++j) sum[j] += static_cast<std::uint32_t>(files[id][j]);
  }
  const auto published = r.at("secure_sum").get<std::vector<std::uint32_t>>();
  CHECK(published == sum);
  CHECK(r.at("secagg").at("survivors").at("advertised") == 10);
  CHECK(r.at("secagg").at("survivors").at("shared") == 9);
  CHECK(r.at("secagg").at("survivors").at("masked") == 8);
}

TEST_CASE("sotto-client refuses a contribution file with a value that is not an integer", "[integration][secagg]") {
  TempDir dir("contribute");
  const Pki pki = make_pki(dir / "pki", 1);
  ClientOptions c = mtls_client_options(pki, 1, 1);
  write_file(dir / "bad.txt", "1 2 three 4\n");
  Process p("client-1",
            {bin_path("sotto-client").string(), "--config", write_client_config(dir / "c.toml", c).string(),
             "--contribute", (dir / "bad.txt").string()},
            dir / "client.log");
  REQUIRE(p.wait_for_exit(30s) == 1);
  CHECK(p.log_contains("value 3 \"three\" is not an integer"));
}

}  // namespace sotto::test
