// The TLS transport of sotto-sim (`transport = "tls"`, or `--transport tls`): the same experiment as the in-memory
// engine, but run by a real sotto-aggregator and real sotto-client processes over TLS 1.3 on 127.0.0.1.
//
// sotto-sim writes a throw-away PKI (scripts/make-certs.sh) and the aggregator's config from the experiment's —
// cohort target = cohort_size and the in-memory minimum (1, or 3 with secure aggregation), the plan, strategy,
// seeds, secure aggregation, evaluation, and rounds.reproducible_aggregation — and starts the daemon on an
// ephemeral port. Each round it samples the cohort exactly as the in-memory engine does and starts one
// sotto-client per sampled client, with that client's id, its examples (data.indices_file, in the population's
// order) and client.max_rounds = 1; when they have exited it reads the round's line from the daemon's
// rounds.jsonl. The daemon's last checkpoint becomes final_model.sotto.
//
// Same model as in memory: both paths run the same coordinator and training code, with the same round seeds,
// client seeds and examples, and reproducible aggregation adds updates in client-id order. Plain rounds therefore
// give the same final model bit for bit (tested). Secure rounds do not: a real client draws the quantizer's
// rounding coins from OpenSSL's CSPRNG, which the simulator replaces by a seeded stream, so the two agree only up
// to the rounding (one quantization step per client and coordinate). Simulated dropouts run over TLS: a client
// the in-memory engine would drop at a step gets fault_injection.vanish_after for the step before and exits
// there, so the same clients drop at the same steps. Poisson sampling needs the in-memory engine (the config
// loader refuses it with tls).
#pragma once

#include <functional>
#include <string>

#include "simulations/simulation.h"

namespace sotto::sim {

// Runs the experiment over TLS and writes the same output files as run_simulation, plus tls/ (configs, PKI,
// logs, the daemon's state). Throws sotto::Error naming the process and quoting its log when one fails.
SimSummary run_simulation_over_tls(const SimConfig& config, const ProgressFn& progress = {},
                                   const std::function<void(const std::string&)>& warn = {});

}  // namespace sotto::sim
