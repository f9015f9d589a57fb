// Ledger: the device's own record of everything it shared, kept sealed in the state store (state_store.h) as the
// file "ledger": one JSON line per contribution (time, round, outcome, examples, bytes sent and received, train
// loss, the L2 norm of the update sent, whether it went through secure aggregation and its clip norm). The app
// shows it to the person; `sotto-client ledger` prints it. Under differential privacy each contribution adds
// privacy {mode, clip_norm, noise_multiplier (what this device's own share implies), honest, epsilon (the device's
// own, after it), epsilon_stated (the aggregator's), and histogram_noise_multiplier when its accuracy histograms
// went with it, noised and charged in that epsilon}, and a line with outcome "sending", written before the masked
// input leaves, carries the contribution's RDP.
//
// The device's accountant — the sum of those RDPs — is kept in its own sealed file, "privacy_spent", updated
// before the "sending" line (a crash between them over-counts, never under-counts). Deleting the ledger (on a
// revocation, if the person asks) keeps it: privacy spent is not given back by forgetting what was shared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/round/messages.h"

namespace sotto::client {

class StateStore;

struct LedgerEntry {
  std::uint64_t round_id = 0;
  std::string outcome;  // "sending", "completed", "abandoned", "rejected"
  std::uint64_t num_examples = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  double train_loss = 0;
  double update_l2_norm = 0;  // of what was sent: after clipping in a secure round
  bool secure = false;        // sent through secure aggregation (the aggregator saw only the sum)
  double clip_norm = 0;       // the L2 bound applied before it was sent (secure rounds)
  std::optional<round::DeviceCharge> privacy;
  bool with_rdp = false;      // the "sending" line: carries privacy->rdp, added to the accountant
  double unix_time = 0;       // set by append()
  std::string reason;         // why, for an "abandoned" round the device left (cancelled, ineligible, ...)
};

class Ledger {
 public:
  explicit Ledger(StateStore& store) : store_(store) {}
  // Throws sotto::Error when the store cannot be written.
  void append(LedgerEntry entry) const;
  // Every entry, oldest first (none when the ledger was never written or was deleted).
  std::vector<LedgerEntry> entries() const;
  // The JSON lines themselves, as `sotto-client ledger --json` prints them.
  std::string json_lines() const;
  // The RDP this device has spent (none: empty).
  std::vector<double> spent_rdp() const;
  // Deletes the entries; the accountant stays.
  void erase() const;

 private:
  StateStore& store_;
};

// The entries of a ledger's JSON lines (Ledger::json_lines, Client::ledger_json). Throws sotto::Error for a line
// Sotto did not write.
std::vector<LedgerEntry> parse_ledger_lines(const std::string& json_lines);

// One line for a person: when, which round, what happened, what was sent, under which protection.
std::string describe(const LedgerEntry& entry);

}  // namespace sotto::client
