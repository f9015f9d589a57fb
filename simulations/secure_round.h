// Secure rounds in memory: the cohort's side of SecAgg+, played against the RoundCoordinator by the very
// round::Participant a device runs (common/round/participant.h), with simulated dropouts at each protocol step.
//
// For every client of the task, a Participant takes the task and the update the training pool computed; it
// privatizes it as on a device (clipped and quantized, its rounding coins from a seed derived from the run's seed,
// so the run is reproducible). Then each step's message — key advertisement, key shares, masked input, unmasking
// response — goes to the coordinator, in client order, unless the client's dropout plan says it vanishes at that
// step, in which case the coordinator hears on_disconnect instead. The coordinator's answers (key directory, shares,
// unmask requests) drive the next step, until it closes the round — completed, or abandoned when too few clients
// remain. A participant that refuses a message (fewer than t neighbours left, say) disconnects, as a device would.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "aggregator/round_coordinator.h"
#include "aggregator/round_log.h"
#include "simulations/population.h"
#include "simulations/sim_config.h"

namespace sotto::sim {

// The protocol messages a client can vanish instead of sending, in the order a secure round asks for them.
enum class RoundStep { kAdvertiseKeys = 0, kShareKeys = 1, kUpdate = 2, kUnmask = 3 };

// The first step at which `client` vanishes in this round, or none. Deterministic for (seed, round, client);
// a plain round consults only kUpdate.
std::optional<RoundStep> planned_dropout(const DropoutRates& rates, bool secure, std::uint64_t seed,
                                         std::uint64_t round_id, ClientIndex client);

struct SecureClient {
  ClientIndex client = 0;
  std::optional<RoundStep> vanishes;
  // The trained update; empty when the client vanishes before its masked input (it never trained), or its
  // training failed (then `error` says why and it disconnects at once).
  std::optional<aggregator::ClientUpdate> update;
  std::string error;
};

// Plays one secure round from the coordinator's SendTask to its RoundClosed, which it returns. `traffic` gains
// each protocol message's protobuf size (no framing), per step as the daemon counts them (secagg_in/out) and in
// bytes_in/bytes_out; the model download is the caller's to count. `clients` lists every connection of the task (connection id = client index). `now` is the
// coordinator's clock. Throws sotto::Error if the coordinator stops answering before closing the round (a bug).
aggregator::action::RoundClosed play_secure_round(aggregator::RoundCoordinator& coordinator,
                                                  const aggregator::action::SendTask& task,
                                                  std::vector<SecureClient> clients, std::uint64_t seed,
                                                  const std::function<aggregator::TimePoint()>& now,
                                                  aggregator::RoundTraffic& traffic);

}  // namespace sotto::sim
