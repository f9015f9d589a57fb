// sotto-client's commands for the person — keygen and consent grant|revoke|show — and the consent gate of the
// binary: without a recorded grant it refuses to start and opens no connection.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "client/kept_generation.h"
#include "client/ledger.h"
#include "client/state_store.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

// Runs sotto-client with `args` to completion (at most 60 s); the process has its exit code and its output.
std::unique_ptr<Process> run_client_cli(const std::vector<std::string>& args, const fs::path& log) {
  return run_to_exit("sotto-client", args, log);
}

}  // namespace

TEST_CASE("sotto-client keygen writes a key only its owner can read and never replaces one", "[integration][cli]") {
  TempDir dir("cli-keygen");
  const fs::path key = dir / "state.key";
  CHECK(run_client_cli({"keygen", "--key-file", key.string()}, dir / "keygen.log")->exit_code() == 0);
  struct stat st {};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string first = read_file(key);
  const auto again = run_client_cli({"keygen", "--key-file", key.string()}, dir / "again.log");
  CHECK(again->exit_code() != 0);
  CHECK_THAT(again->log_text(), Catch::Contains("a key is never replaced"));
  CHECK(read_file(key) == first);
}

TEST_CASE("sotto-client does not start or connect without consent and the person's commands record it",
          "[integration][cli]") {
  TempDir dir("cli-consent");
  const Pki pki = make_pki(dir / "pki", 1);
  TcpProxy proxy(pick_free_port());  // nothing behind it: the test needs only to see whether a client connects
  ClientOptions o = mtls_client_options(pki, 1, proxy.port());
  o.state_dir = dir / "state";
  o.consent_grant.clear();
  o.give_up_after_s = 1;
  const fs::path config = write_client_config(dir / "client.toml", o);
  const std::string state = o.state_dir.string(), key = state_key_file(o.state_dir).string();

  const auto refused = run_client_cli({"--config", config.string()}, dir / "refused.log");
  CHECK(refused->exit_code() != 0);
  CHECK_THAT(refused->log_text(), Catch::Contains("no consent for training is recorded") &&
                                      Catch::Contains("sotto-client consent grant"));
  CHECK(proxy.connections_accepted() == 0);
  CHECK_THAT(run_client_cli({"consent", "show", "--state-dir", state, "--key-file", key}, dir / "show0.log")
                 ->log_text(),
             Catch::Contains("consent: never granted"));

  const auto only_analytics = run_client_cli(
      {"consent", "grant", "--state-dir", state, "--key-file", key, "--scope", "analytics"}, dir / "grant1.log");
  CHECK_THAT(only_analytics->log_text(), Catch::Contains("granted for analytics on"));
  CHECK(run_client_cli({"--config", config.string()}, dir / "refused2.log")->exit_code() != 0);
  CHECK(proxy.connections_accepted() == 0);

  CHECK(run_client_cli({"consent", "grant", "--state-dir", state, "--key-file", key}, dir / "grant2.log")
            ->exit_code() == 0);
  const auto shown = run_client_cli({"consent", "show", "--state-dir", state, "--key-file", key, "--json"},
                                    dir / "show1.log");
  CHECK_THAT(shown->log_text(), Catch::Contains(R"("granted":true)") &&
                                    Catch::Contains(R"("scope":["training","analytics"])"));
  // Granted: the client gets as far as the network (nothing answers, so it gives up after a second).
  const auto started = run_client_cli({"--config", config.string()}, dir / "started.log");
  CHECK_THAT(started->log_text(), Catch::Contains("gave up"));
  CHECK(proxy.connections_accepted() >= 1);

  // A contribution on record (as a round writes it), printed for the person.
  {
    client::StateStore store(o.state_dir, client::read_state_key_file(key), 2);
    store.on_change([&](std::uint64_t g) { client::write_kept_generation(key + ".generation", g); });
    client::LedgerEntry entry;
    entry.round_id = 7;
    entry.outcome = "completed";
    entry.num_examples = 300;
    entry.bytes_sent = 4321;
    entry.secure = true;
    entry.clip_norm = 1.5;
    client::Ledger(store).append(entry);
  }
  const auto printed = run_client_cli({"ledger", "--state-dir", state, "--key-file", key}, dir / "ledger.log");
  CHECK_THAT(printed->log_text(), Catch::Contains("1 ledger entries") && Catch::Contains("round 7  completed") &&
                                      Catch::Contains("sent 4321 B") && Catch::Contains("secure aggregation"));
  CHECK(read_ledger(o.state_dir).size() == 1);

  // Revoked, the ledger deleted too; the generation file beside the key tracks the store.
  const auto revoked = run_client_cli(
      {"consent", "revoke", "--state-dir", state, "--key-file", key, "--delete-ledger"}, dir / "revoke.log");
  CHECK_THAT(revoked->log_text(), Catch::Contains("revoked on") && Catch::Contains("and the ledger"));
  CHECK(read_ledger(o.state_dir).empty());
  CHECK(read_file(key + ".generation") == "5\n");  // two grants, the entry, the revocation, the ledger's removal
  const int before = proxy.connections_accepted();
  CHECK(run_client_cli({"--config", config.string()}, dir / "refused3.log")->exit_code() != 0);
  CHECK(proxy.connections_accepted() == before);

  // Another key opens nothing and changes nothing.
  const fs::path other = dir / "other.key";
  run_client_cli({"keygen", "--key-file", other.string()}, dir / "keygen.log");
  const auto wrong = run_client_cli({"consent", "show", "--state-dir", state, "--key-file", other.string()},
                                    dir / "wrong.log");
  CHECK(wrong->exit_code() != 0);
  CHECK_THAT(wrong->log_text(), Catch::Contains("sealed under a different state key"));
}

}  // namespace sotto::test
