// Ledger: the device's own record of everything it shared — one JSON line per contribution in
// <state_dir>/ledger.jsonl (time, round, outcome, examples, bytes sent and received, train loss, the L2 norm of
// the update sent). The app shows it to the person. Under distributed DP each contribution adds privacy {mode,
// clip_norm, noise_multiplier (what this device's own share implies), honest, epsilon (the device's own, after
// it), epsilon_stated (the aggregator's)}, and a line with outcome "sending", written before the masked input leaves,
// carries the contribution's RDP: the device's accountant is the sum of those lines (spent_rdp()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/round/messages.h"

namespace sotto::client {

struct LedgerEntry {
  std::uint64_t round_id = 0;
  std::string outcome;  // "completed", "abandoned", "rejected"
  std::uint64_t num_examples = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  double train_loss = 0;
  double update_l2_norm = 0;  // of what was sent: after clipping in a secure round
  bool secure = false;        // sent through secure aggregation (the aggregator saw only the sum)
  double clip_norm = 0;       // the L2 bound applied before it was sent (secure rounds)
  std::optional<round::DeviceCharge> privacy;
  bool with_rdp = false;      // the "sending" line: carries privacy->rdp, counted by spent_rdp()
};

class Ledger {
 public:
  explicit Ledger(std::filesystem::path path) : path_(std::move(path)) {}
  void append(const LedgerEntry& entry) const;  // throws sotto::Error when the file cannot be written
  // The RDP this device has spent: the sum of the lines that carry one (none: empty).
  std::vector<double> spent_rdp() const;

 private:
  std::filesystem::path path_;
};

}  // namespace sotto::client
