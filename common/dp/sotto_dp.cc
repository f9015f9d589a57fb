// sotto-dp: the privacy calculator other tools call. One JSON object on stdout; bad arguments exit 2 with a
// message naming the argument.
//   sotto-dp epsilon --sampling-rate Q --noise-multiplier S --steps N --delta D [--accountant rdp|pld]
//     {"epsilon": ..., "accountant": "rdp", "order": ...}   ({"epsilon": ..., "accountant": "pld"} with pld)
//   sotto-dp noise-multiplier --sampling-rate Q --steps N --delta D --target-epsilon E [--accountant rdp|pld]
//     {"noise_multiplier": ...}   the smallest S whose epsilon is at most E
// rdp is rdp_accountant.h's, pld pld_accountant.h's (tighter: a smaller epsilon for the same noise).
// The mechanism is the Poisson-subsampled Gaussian (common/dp/rdp_accountant.h), or with --mechanism ddg the
// Distributed Discrete Gaussian that the aggregator's privacy.mode = "distributed" runs (common/dp/ddg_*.h), given
// --bits, --clip-norm, --clients (the cohort summed), --honest (the honest survivors counted on) and --dimension
// (the update's length) as rounds.jsonl's privacy section records them; its output adds the scale, the L2 bound
// and each client's noise share. --mechanism sum is a private secure sum's (common/dp/integer_sum.h): the
// discrete Gaussian on integer vectors of --dimension entries within --linf-bound and/or --l1-bound, with
// --clients, --honest and --bits as for ddg. With --mechanism ddg, --histogram-bins B and
// --histogram-noise-multiplier Z add each round's accuracy histograms (evaluation.local_histogram_bins): their own
// integer-sum mechanism over 2·B words, charged beside the update, at --sampling-rate 1.
#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/dp/ddg_accounting.h"
#include "common/dp/ddg_parameters.h"
#include "common/dp/integer_sum.h"
#include "common/dp/pld_accountant.h"
#include "common/dp/rdp_accountant.h"
#include "common/util/error.h"

namespace {

namespace dp = sotto::dp;

struct Arguments {
  double sampling_rate = 0;
  double noise_multiplier = 0;
  std::uint64_t steps = 0;
  double delta = 0;
  double target_epsilon = 0;
  std::string accountant = "rdp";
  std::string mechanism = "gaussian";
  dp::DdgSettings ddg;
  dp::ContributionBound bound;  // --mechanism sum
  bool bits_given = false;
  std::uint32_t histogram_bins = 0;  // --mechanism ddg: the rounds' accuracy histograms, charged with the update
  double histogram_noise_multiplier = 0;
};

// One round's RDP of the accuracy histograms' mechanism (dp::kOneHotPairBound over 2·bins words), at q = 1; empty
// without histograms.
std::vector<double> histogram_rdp(const Arguments& a) {
  if (a.histogram_bins == 0) return {};
  const auto p = dp::choose_accuracy_histogram_parameters(a.histogram_bins, a.histogram_noise_multiplier, a.ddg.clients,
                                                         a.ddg.honest, a.ddg.bits, a.ddg.stddevs_in_range);
  return dp::ddg_rdp(p, 1.0, dp::default_orders());
}

// The mechanism --mechanism ddg or sum describes, at noise multiplier z.
dp::DdgParameters mechanism_at(const Arguments& a, double z) {
  if (a.mechanism == "sum") {
    return dp::choose_integer_sum_parameters({a.bound, a.ddg.dimension, z, a.ddg.clients, a.ddg.honest,
                                              a.bits_given ? a.ddg.bits : 32, a.ddg.stddevs_in_range});
  }
  dp::DdgSettings settings = a.ddg;
  settings.noise_multiplier = z;
  return dp::choose_ddg_parameters(settings);
}

// The first argument out of its range, as a message naming it; none when all are fine.
std::optional<std::string> invalid(const Arguments& a, bool needs_noise, bool needs_target) {
  if (!(a.sampling_rate > 0 && a.sampling_rate <= 1)) return "--sampling-rate must be in (0, 1]";
  if (needs_noise && !(a.noise_multiplier > 0 && std::isfinite(a.noise_multiplier))) {
    return "--noise-multiplier must be a positive number";
  }
  if (a.steps == 0) return "--steps must be at least 1";
  if (!(a.delta > 0 && a.delta < 1)) return "--delta must be in (0, 1)";
  if (needs_target && !(a.target_epsilon > 0 && std::isfinite(a.target_epsilon))) {
    return "--target-epsilon must be a positive number";
  }
  if (a.mechanism != "gaussian" && a.mechanism != "ddg" && a.mechanism != "sum") {
    return "--mechanism must be gaussian, ddg or sum";
  }
  if (a.mechanism == "sum" && !a.bound.bounded()) return "--mechanism sum needs --linf-bound or --l1-bound";
  if (a.mechanism != "sum" && a.bound.bounded()) return "--linf-bound and --l1-bound apply to --mechanism sum";
  if (a.mechanism != "gaussian") {
    if (a.ddg.bits < 2 || a.ddg.bits > 32) return "--bits must be in 2..32";
    if (a.mechanism == "ddg" && !(a.ddg.clip_norm > 0 && std::isfinite(a.ddg.clip_norm))) {
      return "--clip-norm must be a positive number";
    }
    if (a.ddg.clients < 1) return "--clients must be at least 1";
    if (a.ddg.honest < 1 || a.ddg.honest > a.ddg.clients) return "--honest must be in 1..--clients";
    if (a.ddg.dimension < 1) return "--dimension must be at least 1";
  }
  if (a.histogram_bins > 0 || a.histogram_noise_multiplier != 0) {
    if (a.mechanism != "ddg" || a.sampling_rate != 1) {
      return "--histogram-bins applies to --mechanism ddg at --sampling-rate 1 (histogram rounds claim no sampling)";
    }
    if (a.histogram_bins < 1 || a.histogram_bins > 100) return "--histogram-bins must be in 1..100";
    if (!(a.histogram_noise_multiplier > 0 && std::isfinite(a.histogram_noise_multiplier))) {
      return "--histogram-noise-multiplier must be a positive number";
    }
  }
  if (a.accountant != "rdp" && a.accountant != "pld") return "--accountant must be rdp or pld";
  if (a.accountant == "pld" && a.mechanism != "gaussian") {
    return "--accountant pld accounts the Gaussian mechanism; --mechanism " + a.mechanism +
           " is accounted with rdp (Zhu-Wang subsampling of the paper's RDP bound)";
  }
  return std::nullopt;
}

void add_common(CLI::App& command, Arguments& a) {
  command.add_option("--sampling-rate", a.sampling_rate, "probability Q that a user takes part in a round")->required();
  command.add_option("--steps", a.steps, "rounds N")->required();
  command.add_option("--delta", a.delta, "delta D")->required();
  command.add_option("--accountant", a.accountant, "rdp (default) or pld (privacy-loss distribution, tighter)");
  command.add_option("--mechanism", a.mechanism, "gaussian (default), ddg or sum");
  command.add_option("--bits", a.ddg.bits, "ddg, sum: bits per coordinate (modulus 2^bits; default 16, sum 32)")
      ->each([&a](const std::string&) { a.bits_given = true; });
  command.add_option("--linf-bound", a.bound.linf, "sum: the largest |entry| of a contribution");
  command.add_option("--l1-bound", a.bound.l1, "sum: the largest sum of a contribution's |entries|");
  command.add_option("--clip-norm", a.ddg.clip_norm, "ddg: the L2 clip norm C");
  command.add_option("--clients", a.ddg.clients, "ddg: the clients summed (the cohort)");
  command.add_option("--honest", a.ddg.honest, "ddg: the honest survivors whose shares carry the noise");
  command.add_option("--dimension", a.ddg.dimension, "ddg: the update's length");
  command.add_option("--beta", a.ddg.beta, "ddg: conditional rounding's beta (default exp(-1/2))");
  command.add_option("--histogram-bins", a.histogram_bins,
                     "ddg: each round also sums the devices' accuracy histograms of this many bins");
  command.add_option("--histogram-noise-multiplier", a.histogram_noise_multiplier,
                     "ddg: the histograms' own noise multiplier (against their L2 sensitivity sqrt 2)");
}

nlohmann::json ddg_epsilon(const Arguments& a) {
  const auto p = mechanism_at(a, a.noise_multiplier);
  const auto orders = dp::default_orders();
  auto rdp = dp::ddg_rdp(p, a.sampling_rate, orders);
  const auto histograms = histogram_rdp(a);
  for (std::size_t i = 0; i < histograms.size(); ++i) rdp[i] += histograms[i];
  for (double& r : rdp) r *= static_cast<double>(a.steps);
  const auto e = dp::epsilon_from_rdp(orders, rdp, a.delta);
  return {{"epsilon", e.epsilon}, {"accountant", "rdp"}, {"order", e.order}, {"mechanism", a.mechanism},
          {"scale", p.scale},     {"l2_bound", p.l2_bound}, {"local_stddev", p.local_stddev}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sotto-dp: the epsilon of DP-FedAvg rounds (the Poisson-subsampled Gaussian), and the noise for a "
               "target epsilon"};
  app.require_subcommand(1);
  Arguments a;
  auto* epsilon = app.add_subcommand("epsilon", "epsilon after N rounds at sampling rate Q and noise multiplier S");
  add_common(*epsilon, a);
  epsilon->add_option("--noise-multiplier", a.noise_multiplier, "noise standard deviation over the clip norm S")
      ->required();
  auto* noise = app.add_subcommand("noise-multiplier", "the smallest noise multiplier that keeps epsilon <= E");
  add_common(*noise, a);
  noise->add_option("--target-epsilon", a.target_epsilon, "the epsilon budget E")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "sotto-dp: " << e.what() << " (see sotto-dp --help)\n";
    return 2;
  }
  const bool for_epsilon = epsilon->parsed();
  if (auto why = invalid(a, for_epsilon, !for_epsilon)) {
    std::cerr << "sotto-dp: " << *why << "\n";
    return 2;
  }
  try {
    nlohmann::json out;
    if (a.mechanism != "gaussian" && for_epsilon) {
      out = ddg_epsilon(a);
    } else if (a.mechanism != "gaussian") {
      auto spent = histogram_rdp(a);  // the histograms' charge, fixed by their own z, over all the rounds
      for (double& r : spent) r *= static_cast<double>(a.steps);
      out = {{"noise_multiplier",
              dp::smallest_noise_multiplier([&a](double z) { return mechanism_at(a, z); }, a.sampling_rate, a.steps,
                                            a.delta, a.target_epsilon, spent)}};
    } else if (for_epsilon && a.accountant == "pld") {
      out = {{"epsilon", dp::pld_subsampled_gaussian_epsilon(a.sampling_rate, a.noise_multiplier, a.steps, a.delta)},
             {"accountant", "pld"}};
    } else if (a.accountant == "pld") {
      out = {{"noise_multiplier", dp::pld_noise_multiplier_for(a.sampling_rate, a.steps, a.delta, a.target_epsilon)}};
    } else if (for_epsilon) {
      const auto e = sotto::dp::subsampled_gaussian_epsilon(a.sampling_rate, a.noise_multiplier, a.steps, a.delta);
      out = {{"epsilon", e.epsilon}, {"accountant", "rdp"}, {"order", e.order}};
    } else {
      out = {{"noise_multiplier", sotto::dp::noise_multiplier_for(a.sampling_rate, a.steps, a.delta, a.target_epsilon)}};
    }
    std::cout << out.dump() << "\n";
  } catch (const sotto::Error& e) {
    std::cerr << "sotto-dp: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
