// PrivacyJournal: <state_dir>/privacy.jsonl — one line per round whose privacy was charged, written and fsynced
// before that round's sum is unmasked, so that no crash can release a sum whose cost is not on disk. A round
// abandoned after its debit stays charged; one that runs again pays again. The journal is the accountant's state:
// a restarted aggregator sums its lines' RDP (never resets it), and checks that sum against the one the last
// checkpoint recorded, refusing to start if the journal has lost charges.
//
// A line: round, mode, clients, min_survivors, honest, bits, clip_norm, noise_multiplier, scale, l2_bound,
// local_stddev, dimension, padded, delta, epsilon (spent after it), order, sampling, rdp [one per order of
// dp::default_orders()].
#pragma once

#include <filesystem>
#include <vector>

#include "aggregator/privacy_budget.h"

namespace sotto::aggregator {

class PrivacyJournal {
 public:
  explicit PrivacyJournal(std::filesystem::path path) : path_(std::move(path)) {}

  // The RDP charged so far, at `orders` orders (none: all zeros). Throws sotto::Error for a malformed journal, or
  // one whose sum falls short of `checkpointed` (the RDP the checkpoint recorded) at some order.
  std::vector<double> load(std::size_t orders, const std::vector<double>& checkpointed) const;

  // Appends the charge and fsyncs; throws sotto::Error when it cannot (the round must then not be unmasked).
  void append(const RoundCharge& charge, const PrivacyOptions& options, std::uint32_t honest) const;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace sotto::aggregator
