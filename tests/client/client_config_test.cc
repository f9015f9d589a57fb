#include "client/client_config.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/test_support.h"

using namespace sotto;

namespace {

std::filesystem::path write_config(const sotto::test::TempDir& dir, const std::string& text) {
  auto path = dir.path() / "client.toml";
  std::ofstream(path) << text;
  return path;
}

const std::string kBase = "[client]\nid = \"c1\"\n[server]\nca_file = \"ca.pem\"\n[auth]\ntoken = \"0123456789abcdef\"\n";

}  // namespace

TEST_CASE("client config: defaults and resolved paths") {
  sotto::test::TempDir dir;
  auto c = client::load_sotto_client_config(write_config(dir, kBase));
  CHECK(c.client.client_id == "c1");
  CHECK(c.client.ca_file == dir.path() / "ca.pem");
  CHECK(c.client.port == 8443);
  CHECK(c.num_shards == 1);
  CHECK(c.partition == client::Partitioning::kIid);
}

TEST_CASE("client config: bad values are refused with the key named") {
  sotto::test::TempDir dir;
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[data]\nnum_shards = 4\nshard_index = 4\n")),
                    Catch::Contains("'data.shard_index'") && Catch::Contains("count from 0"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[data]\npartition = \"zipf\"\n")),
                    Catch::Contains("'data.partition'"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, "[client]\nid = \"c1\"\n[server]\nca_file = \"ca.pem\"\n")),
                    Catch::Contains("'auth'"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[auth2]\nx = 1\n")),
                    Catch::Contains("unknown key 'auth2.x'"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[state]\nsave_local_models = true\n")),
                    Catch::Contains("'state.save_local_models'"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(
                        write_config(dir, kBase + "[privacy]\naccepted_modes = [\"local\", \"secret\"]\n")),
                    Catch::Contains("'privacy.accepted_modes'") && Catch::Contains("\"secret\"") &&
                        Catch::Contains("\"distributed\", \"central\", \"local\""));
  CHECK(client::load_sotto_client_config(write_config(dir, kBase + "[privacy]\naccepted_modes = [\"local\"]\n"))
            .client.privacy.accepted_modes == std::vector<std::string>{"local"});
}

TEST_CASE("client config: an indices file must exist and max_rounds is read") {
  sotto::test::TempDir dir;
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[data]\nindices_file = \"missing.txt\"\n")),
                    Catch::Contains("'data.indices_file'") && Catch::Contains("does not exist"));
  std::ofstream(dir.path() / "mine.txt") << "3\n1\n";
  const std::string with_limit = "[client]\nid = \"c1\"\nmax_rounds = 2\n[server]\nca_file = \"ca.pem\"\n[auth]\n"
                                 "token = \"0123456789abcdef\"\n[data]\nindices_file = \"mine.txt\"\n";
  const auto c = client::load_sotto_client_config(write_config(dir, with_limit));
  CHECK(c.client.max_rounds == 2);
  CHECK(c.indices_file == dir.path() / "mine.txt");
}

TEST_CASE("client config: evaluation.report_local is true, false or \"secure_sum\"") {
  sotto::test::TempDir dir;
  const auto clear = client::load_sotto_client_config(write_config(dir, kBase + "[evaluation]\nreport_local = true\n"));
  CHECK(clear.client.report_local_evaluation);
  CHECK_FALSE(clear.client.report_local_in_secure_sum);
  const auto summed =
      client::load_sotto_client_config(write_config(dir, kBase + "[evaluation]\nreport_local = \"secure_sum\"\n"));
  CHECK_FALSE(summed.client.report_local_evaluation);
  CHECK(summed.client.report_local_in_secure_sum);
  const auto none = client::load_sotto_client_config(write_config(dir, kBase));
  CHECK_FALSE(none.client.report_local_evaluation);
  CHECK_FALSE(none.client.report_local_in_secure_sum);
  CHECK_THROWS_WITH(
      client::load_sotto_client_config(write_config(dir, kBase + "[evaluation]\nreport_local = \"all\"\n")),
                    Catch::Contains("'evaluation.report_local'") && Catch::Contains("secure_sum"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[evaluation]\nreport_local = 1\n")),
                    Catch::Contains("'evaluation.report_local'"));
}

TEST_CASE("client config: the app's limits are read, 0 meaning no cap") {
  sotto::test::TempDir dir;
  const auto none = client::load_sotto_client_config(write_config(dir, kBase)).client.limits;
  CHECK(none.training_threads == 1);
  CHECK(none.round_wall_time.count() == 0);
  CHECK(none.max_update_bytes == 0);
  CHECK(none.bytes_per_day == 0);
  const auto set = client::load_sotto_client_config(
                       write_config(dir, kBase + "[training]\nthreads = 2\n[limits]\nround_wall_time_s = 1.5\n"
                                                 "max_update_bytes = 100000\nbytes_per_day = 5000000\n"))
                       .client.limits;
  CHECK(set.training_threads == 2);
  CHECK(set.round_wall_time == std::chrono::milliseconds(1500));
  CHECK(set.max_update_bytes == 100000);
  CHECK(set.bytes_per_day == 5000000);
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[limits]\nbytes_per_day = -1\n")),
                    Catch::Contains("'limits.bytes_per_day'"));
  CHECK_THROWS_WITH(client::load_sotto_client_config(write_config(dir, kBase + "[limits]\nthreads = 2\n")),
                    Catch::Contains("unknown key 'limits.threads'"));
}
