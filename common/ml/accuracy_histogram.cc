#include "common/ml/accuracy_histogram.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace sotto::ml {

std::uint32_t accuracy_bin(double accuracy, std::uint32_t bins) {
  if (!(accuracy > 0)) return 0;  // NaN too
  const double at = std::floor(accuracy * bins);
  return at >= bins ? bins - 1 : static_cast<std::uint32_t>(at);
}

std::vector<std::uint32_t> accuracy_histogram_words(const std::optional<LocalEvaluation>& evaluation,
                                                    std::uint32_t bins) {
  std::vector<std::uint32_t> words(2 * static_cast<std::size_t>(bins), 0);
  if (evaluation && evaluation->examples > 0 && bins > 0) {
    words[accuracy_bin(evaluation->global_accuracy, bins)] = 1;
    words[bins + accuracy_bin(evaluation->personal_accuracy, bins)] = 1;
  }
  return words;
}

std::uint64_t AccuracyHistogram::devices() const {
  return std::accumulate(global.begin(), global.end(), std::uint64_t{0});
}

namespace {

void check_length(std::size_t words, std::uint32_t bins) {
  if (words != 2 * static_cast<std::size_t>(bins)) {
    throw std::invalid_argument("an accuracy histogram of " + std::to_string(bins) + " bins has " +
                                std::to_string(2 * static_cast<std::size_t>(bins)) + " words, not " +
                                std::to_string(words));
  }
}

}  // namespace

AccuracyHistogram noisy_accuracy_histogram(std::span<const std::int64_t> values, std::uint32_t bins,
                                           std::uint64_t survivors) {
  check_length(values.size(), bins);
  AccuracyHistogram h{bins, {}, {}};
  const auto most = static_cast<std::int64_t>(std::min<std::uint64_t>(survivors, INT64_MAX));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::int64_t count = std::clamp<std::int64_t>(values[i], 0, most);
    (i < bins ? h.global : h.personal).push_back(static_cast<std::uint64_t>(count));
  }
  return h;
}

HistogramReading read_accuracy_histogram(std::span<const std::uint32_t> summed, std::uint32_t bins,
                                         std::uint64_t survivors) {
  check_length(summed.size(), bins);
  AccuracyHistogram h{bins, {summed.begin(), summed.begin() + bins}, {summed.begin() + bins, summed.end()}};
  const std::uint64_t global = h.devices();
  const std::uint64_t personal = std::accumulate(h.personal.begin(), h.personal.end(), std::uint64_t{0});
  if (const std::uint64_t most = std::max(global, personal); most > survivors) {
    return {std::nullopt, "the accuracy histogram counts more devices (" + std::to_string(most) + ") than the " +
                              std::to_string(survivors) + " survivors: a device put other values than a one-hot in it"};
  }
  if (personal != global) {
    return {std::nullopt, "the accuracy histogram counts " + std::to_string(global) + " global and " +
                              std::to_string(personal) + " personal accuracies: a device's words were not one-hot"};
  }
  return {std::move(h), ""};
}

AccuracySpread spread_of_histogram(const std::vector<std::uint64_t>& counts) {
  std::vector<double> values;
  for (std::size_t b = 0; b < counts.size(); ++b) {
    values.insert(values.end(), counts[b], (static_cast<double>(b) + 0.5) / static_cast<double>(counts.size()));
  }
  return spread_of(std::move(values));
}

}  // namespace sotto::ml
