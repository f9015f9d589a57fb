// sotto-dp, the privacy calculator other tools call: its JSON on stdout, and exit code 2 with a message naming the
// argument for anything out of range.
#include <catch2/catch.hpp>

#include "common/dp/pld_accountant.h"
#include "common/dp/rdp_accountant.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

struct Run {
  int code = -1;
  std::string output;  // stdout and stderr
};

Run sotto_dp(const std::vector<std::string>& args, const TempDir& dir) {
  std::vector<std::string> argv{bin_path("sotto-dp").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p("sotto-dp", argv, dir / "sotto-dp.log");
  const auto code = p.wait_for_exit(60s);
  REQUIRE(code.has_value());
  return {*code, p.log_text()};
}

nlohmann::json last_json_line(const std::string& text) {
  const auto end = text.find_last_not_of('\n');
  const auto start = text.rfind('\n', end);
  return nlohmann::json::parse(text.substr(start == std::string::npos ? 0 : start + 1, end + 1));
}

}  // namespace

TEST_CASE("sotto-dp epsilon prints the accountant's epsilon and order as JSON", "[integration][dp]") {
  TempDir dir("sotto-dp");
  const Run r = sotto_dp({"epsilon", "--sampling-rate", "0.01", "--noise-multiplier", "1.1", "--steps", "1000",
                          "--delta", "1e-5"},
                         dir);
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto j = last_json_line(r.output);
  const auto expected = dp::subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-5);
  CHECK(j.at("accountant") == "rdp");
  CHECK(j.at("epsilon").get<double>() == Approx(expected.epsilon).epsilon(1e-12));
  CHECK(j.at("order").get<double>() == expected.order);
}

TEST_CASE("sotto-dp noise-multiplier gives the smallest noise within the target epsilon", "[integration][dp]") {
  TempDir dir("sotto-dp-noise");
  const Run r = sotto_dp({"noise-multiplier", "--sampling-rate", "0.01", "--steps", "1000", "--delta", "1e-5",
                          "--target-epsilon", "2"},
                         dir);
  INFO(r.output);
  REQUIRE(r.code == 0);
  const double sigma = last_json_line(r.output).at("noise_multiplier").get<double>();
  CHECK(dp::subsampled_gaussian_epsilon(0.01, sigma, 1000, 1e-5).epsilon <= 2);
  CHECK(dp::subsampled_gaussian_epsilon(0.01, sigma * 0.999, 1000, 1e-5).epsilon > 2);
}

TEST_CASE("sotto-dp with --accountant pld prints the PLD epsilon below rdp's and inverts it", "[integration][dp]") {
  TempDir dir("sotto-dp-pld");
  const Run e = sotto_dp({"epsilon", "--sampling-rate", "0.01", "--noise-multiplier", "1.1", "--steps", "1000",
                          "--delta", "1e-5", "--accountant", "pld"},
                         dir);
  INFO(e.output);
  REQUIRE(e.code == 0);
  const auto j = last_json_line(e.output);
  CHECK(j.at("accountant") == "pld");
  CHECK_FALSE(j.contains("order"));
  const double epsilon = j.at("epsilon").get<double>();
  CHECK(epsilon == Approx(dp::pld_subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-5)).epsilon(1e-12));
  CHECK(epsilon < dp::subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-5).epsilon);
  const Run n = sotto_dp({"noise-multiplier", "--sampling-rate", "0.01", "--steps", "1000", "--delta", "1e-5",
                          "--target-epsilon", std::to_string(epsilon), "--accountant", "pld"},
                         dir);
  INFO(n.output);
  REQUIRE(n.code == 0);
  CHECK(last_json_line(n.output).at("noise_multiplier").get<double>() == Approx(1.1).epsilon(1e-3));
}

TEST_CASE("sotto-dp accounts a private secure sum and noise-multiplier inverts it", "[integration][dp]") {
  TempDir dir("sotto-dp-sum");
  const std::vector<std::string> mechanism{"--mechanism", "sum", "--linf-bound", "1", "--l1-bound", "1",
                                           "--clients", "5", "--honest", "2", "--dimension", "8",
                                           "--sampling-rate", "1", "--steps", "10", "--delta", "1e-5"};
  auto with = [&mechanism](std::vector<std::string> head) {
    head.insert(head.end(), mechanism.begin(), mechanism.end());
    return head;
  };
  const Run e = sotto_dp(with({"epsilon", "--noise-multiplier", "2"}), dir);
  INFO(e.output);
  REQUIRE(e.code == 0);
  const auto j = last_json_line(e.output);
  CHECK(j.at("mechanism") == "sum");
  CHECK(j.at("scale") == 1.0);
  CHECK(j.at("l2_bound") == 1.0);  // a one-hot histogram
  CHECK(j.at("local_stddev").get<double>() == Approx(std::sqrt(2.0)));  // z·D2/sqrt(h)
  const double epsilon = j.at("epsilon").get<double>();
  const Run n = sotto_dp(with({"noise-multiplier", "--target-epsilon", std::to_string(epsilon)}), dir);
  INFO(n.output);
  REQUIRE(n.code == 0);
  CHECK(last_json_line(n.output).at("noise_multiplier").get<double>() == Approx(2.0).epsilon(1e-4));
  // A larger bound is a larger sensitivity: the same noise multiplier, more absolute noise, the same epsilon
  // (up to the sum-of-discrete-Gaussians correction, smaller for larger shares).
  const Run wide = sotto_dp({"epsilon", "--noise-multiplier", "2", "--mechanism", "sum", "--linf-bound", "3",
                             "--clients", "5", "--honest", "2", "--dimension", "8", "--sampling-rate", "1",
                             "--steps", "10", "--delta", "1e-5"},
                            dir);
  REQUIRE(wide.code == 0);
  CHECK(last_json_line(wide.output).at("l2_bound").get<double>() == Approx(3 * std::sqrt(8.0)));
  CHECK(last_json_line(wide.output).at("epsilon").get<double>() <= epsilon);
}

TEST_CASE("sotto-dp exits 2 naming the argument that is out of range", "[integration][dp]") {
  TempDir dir("sotto-dp-bad");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"epsilon", "--sampling-rate", "1.5", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"},
       "--sampling-rate"},
      {{"epsilon", "--sampling-rate", "0", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"},
       "--sampling-rate"},
      {{"epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "0", "--steps", "10", "--delta", "1e-5"},
       "--noise-multiplier"},
      {{"epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "0", "--delta", "1e-5"}, "--steps"},
      {{"epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1"}, "--delta"},
      {{"epsilon", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1e-5"}, "--noise-multiplier"},
      {{"noise-multiplier", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1e-5", "--target-epsilon", "-1"},
       "--target-epsilon"},
      {{"epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        "--accountant", "moments"},
       "--accountant"},
      {{"epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        "--accountant", "pld", "--mechanism", "ddg", "--bits", "16", "--clip-norm", "1", "--clients", "10",
        "--honest", "9", "--dimension", "100"},
       "--accountant pld"},
      {{"epsilon", "--sampling-rate", "1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        "--mechanism", "sum", "--clients", "5", "--honest", "2", "--dimension", "8"},
       "--linf-bound or --l1-bound"},
      {{"epsilon", "--sampling-rate", "1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        "--linf-bound", "1"},
       "apply to --mechanism sum"},
      {{"epsilon", "--sampling-rate", "0.5", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        "--mechanism", "ddg", "--clip-norm", "1", "--clients", "10", "--honest", "9", "--dimension", "100",
        "--histogram-bins", "10", "--histogram-noise-multiplier", "2"},
       "--histogram-bins applies to --mechanism ddg at --sampling-rate 1"},
      {{"epsilon", "--sampling-rate", "1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        "--mechanism", "ddg", "--clip-norm", "1", "--clients", "10", "--honest", "9", "--dimension", "100",
        "--histogram-bins", "10"},
       "--histogram-noise-multiplier"},
  };
  for (const auto& [args, names] : cases) {
    const Run r = sotto_dp(args, dir);
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find(names) != std::string::npos);
  }
}

}  // namespace sotto::test
