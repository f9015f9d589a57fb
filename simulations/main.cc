// sotto-sim: the research runner. Simulates a population of virtual clients in one process through the
// aggregator's RoundCoordinator and writes rounds.jsonl, rounds.csv, summary.json and plots (simulations/README.md).
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "simulations/mpi_cluster.h"
#include "simulations/sim_config.h"
#include "simulations/simulation.h"
#include "simulations/tls_transport.h"
#include "common/util/error.h"

int main(int argc, char** argv) {
  using namespace sotto;
  // Under mpirun every rank runs this binary with the same arguments; rank 0 leads and writes the outputs.
  const sim::MpiCluster cluster(&argc, &argv);
  CLI::App app{"sotto-sim: federated-learning simulations — many virtual clients in one process, driven through "
               "the aggregator's round coordinator"};
  std::string config_path;
  std::vector<std::string> overrides;
  std::string output;
  app.add_option("--config", config_path, "TOML experiment file (simulations/experiments/*.toml); default: all "
                                          "keys at their defaults")
      ->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "Override a config key, e.g. --set rounds=5 --set data.partition=dirichlet "
                                     "(repeatable; the value is TOML, or a string)")
      ->take_last()
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--output", output, "Output directory (overrides output_dir)");
  std::string transport;
  app.add_option("--transport", transport,
                 "memory (in-process, the default) or tls (a real sotto-aggregator and sotto-client processes on "
                 "127.0.0.1); same as --set transport=...")
      ->check(CLI::IsMember({"memory", "tls"}));
  app.footer(sim::documented_keys() + R"(
Scale-out: `mpirun -n R sotto-sim --config FILE` deals each round's training over R ranks (threads workers each)
with the same results as one process; rank 0 runs the coordinator and writes the outputs.)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    if (cluster.size() > 1 && code != 0) cluster.abort(code);
    return code;
  }

  try {
    std::optional<std::filesystem::path> out_dir;
    if (!output.empty()) out_dir = output;
    if (!transport.empty()) overrides.push_back("transport=" + transport);
    const sim::SimConfig cfg = sim::load_sim_config(config_path, overrides, out_dir);
    if (cfg.transport == sim::Transport::kTls && cluster.size() > 1) {
      throw Error("transport = \"tls\" runs one aggregator and its client processes on this machine; run it "
                  "without mpirun");
    }
    if (!cluster.is_root()) {
      sim::run_simulation_worker(cfg, cluster);
      return 0;
    }
    const bool tty = isatty(fileno(stderr));
    std::fprintf(stderr, "sotto-sim: %llu clients, cohort %u, %llu rounds, %s on %s, %d x %u threads -> %s\n",
                 static_cast<unsigned long long>(cfg.population), cfg.cohort_size,
                 static_cast<unsigned long long>(cfg.rounds), cfg.strategy.name.c_str(), cfg.partition.c_str(),
                 cluster.size(), cfg.threads, cfg.output_dir.c_str());
    auto progress = [tty](const sim::RoundRow& row, std::uint64_t total, double elapsed) {
      const double per_round = row.completed_rounds ? elapsed / static_cast<double>(row.completed_rounds) : 0;
      const double eta = per_round * static_cast<double>(total - std::min(total, row.completed_rounds));
      if (tty) {
        std::fprintf(stderr, "\r round %llu/%llu  acc %.4f  ETA %.0fs   ",
                     static_cast<unsigned long long>(row.completed_rounds), static_cast<unsigned long long>(total),
                     row.test_accuracy, eta);
      } else {
        std::fprintf(stderr, "round %llu/%llu: test accuracy %.4f, test loss %.4f, train loss %.4f, %u clients, %.1fs",
                     static_cast<unsigned long long>(row.completed_rounds), static_cast<unsigned long long>(total),
                     row.test_accuracy, row.test_loss, row.mean_train_loss, row.participants, row.seconds_round);
        if (row.local_clients > 0) {
          std::fprintf(stderr, "; held out: global %.4f (p10 %.4f), personal %.4f (p10 %.4f)", row.local_global_mean,
                       row.local_global_p10, row.local_personal_mean, row.local_personal_p10);
        }
        std::fprintf(stderr, "\n");
      }
      std::fflush(stderr);
    };
    auto warn = [tty](const std::string& w) { std::fprintf(stderr, "%ssotto-sim: warning: %s\n", tty ? "\n" : "", w.c_str()); };
    const sim::SimSummary s = cfg.transport == sim::Transport::kTls ? sim::run_simulation_over_tls(cfg, progress, warn)
                                                                     : sim::run_simulation(cfg, progress, warn, cluster);
    if (tty) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "sotto-sim: %llu rounds in %.1fs: final accuracy %.4f, best %.4f (round %llu); outputs in %s\n",
                 static_cast<unsigned long long>(s.rounds), s.total_seconds, s.final_accuracy, s.best_accuracy,
                 static_cast<unsigned long long>(s.best_round), cfg.output_dir.c_str());
    if (const auto& e = s.local_evaluation; !e.is_null()) {
      std::fprintf(stderr, "sotto-sim: every client on its held-out examples: personal model %.4f (10th percentile "
                   "%.4f)", e["personal"]["mean"].get<double>(), e["personal"]["p10"].get<double>());
      if (!e["global"].is_null()) {
        std::fprintf(stderr, ", global model %.4f (%.4f)", e["global"]["mean"].get<double>(),
                     e["global"]["p10"].get<double>());
      }
      std::fprintf(stderr, "; clients.csv\n");
    }
    if (!s.stopped_by_budget.empty()) {
      std::fprintf(stderr, "sotto-sim: stopped before rounds.total: %s\n", s.stopped_by_budget.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sotto-sim: error" << (cluster.size() > 1 ? " on rank " + std::to_string(cluster.rank()) : "")
              << ": " << e.what() << std::endl;
    if (cluster.size() > 1) cluster.abort(1);  // the other ranks would wait for this one forever
    return 1;
  }
}
