// Plots: accuracy.png and loss.png from a run's rounds.csv, drawn by gnuplot (Debian's gnuplot-nox). Plotting is
// a convenience: when gnuplot is missing or fails, the caller gets a warning to print and the run still succeeds.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace sotto::sim {

bool gnuplot_available();

// Draws dir/accuracy.png (test accuracy per round) and dir/loss.png (test and mean training loss per round) from
// dir/rounds.csv, and with `local` dir/personal.png (the round's clients' held-out accuracy, global against
// personal: mean and 10th percentile). Returns a warning when the plots could not be drawn, nullopt on success.
std::optional<std::string> draw_plots(const std::filesystem::path& dir, const std::string& title, bool local = false);

}  // namespace sotto::sim
