// Accuracy histograms: how devices report their held-out accuracies through a secure sum instead of in the clear.
// Each device adds 2·bins words to its secure-aggregation input — a one-hot of the bin its global model's accuracy
// falls in, then one of its personal model's — or zeros when it has nothing to report or does not allow it. The
// aggregator learns only the survivors' counts per bin, from which it estimates the spread over devices (mean, 10th
// percentile, median at the bins' midpoints). Bin b of `bins` holds accuracies in [b/bins, (b+1)/bins), the last
// one 1.0 too. No LibTorch.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/ml/accuracy_spread.h"
#include "common/ml/training_plan.h"

namespace sotto::ml {

inline constexpr std::uint32_t kMaxAccuracyBins = 100;

// The bin of an accuracy in [0, 1] (values outside are clamped to the first or last bin).
std::uint32_t accuracy_bin(double accuracy, std::uint32_t bins);

// A device's 2·bins words: one-hot global bin, one-hot personal bin; all zero without an evaluation.
std::vector<std::uint32_t> accuracy_histogram_words(const std::optional<LocalEvaluation>& evaluation,
                                                    std::uint32_t bins);

struct AccuracyHistogram {
  std::uint32_t bins = 0;
  std::vector<std::uint64_t> global;    // devices per bin
  std::vector<std::uint64_t> personal;  // devices per bin
  std::uint64_t devices() const;        // how many reported (the global counts' total)
};

// The survivors' summed words (2·bins of them) as counts, or why they cannot be counts of at most `survivors`
// one-hot contributions: a total over `survivors`, or global and personal totals that differ — what a device that
// put other values in its words would cause. Throws std::invalid_argument on a length that is not 2·bins.
struct HistogramReading {
  std::optional<AccuracyHistogram> histogram;
  std::string inconsistency;
};
HistogramReading read_accuracy_histogram(std::span<const std::uint32_t> summed, std::uint32_t bins,
                                         std::uint64_t survivors);
// Under distributed DP the summed words carry the survivors' noise: the released values as counts, each clamped to
// [0, survivors] (post-processing: what no sum of the survivors' one-hots could exceed; a device that put other
// values in its words moves no bin further). The totals are not checked (noise breaks them). Throws
// std::invalid_argument on a length that is not 2·bins.
AccuracyHistogram noisy_accuracy_histogram(std::span<const std::int64_t> values, std::uint32_t bins,
                                           std::uint64_t survivors);

// The spread of the devices over one histogram, each device at its bin's midpoint (zeros for none).
AccuracySpread spread_of_histogram(const std::vector<std::uint64_t>& counts);

}  // namespace sotto::ml
