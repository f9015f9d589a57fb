// Ledger: the device's own record of everything it shared — one JSON line per contribution in
// <state_dir>/ledger.jsonl (time, round, outcome, examples, bytes sent and received, train loss, the L2 norm of
// the update sent). The app shows it to the person; privacy fields (clip norm, noise, epsilon) join it when
// differential privacy lands.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

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
};

class Ledger {
 public:
  explicit Ledger(std::filesystem::path path) : path_(std::move(path)) {}
  void append(const LedgerEntry& entry) const;  // throws sotto::Error when the file cannot be written

 private:
  std::filesystem::path path_;
};

}  // namespace sotto::client
