#include "simulations/plots.h"

#include <cstdlib>
#include <fstream>

namespace sotto::sim {

namespace {

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string gp_string(const std::string& s) {  // a gnuplot single-quoted string
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

bool gnuplot_available() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}

std::optional<std::string> draw_plots(const std::filesystem::path& dir, const std::string& title, bool local) {
  if (!gnuplot_available()) {
    return "gnuplot is not installed: skipping accuracy.png and loss.png (install gnuplot-nox, or run "
           "scripts/install-deps.sh); rounds.csv has the data";
  }
  const std::filesystem::path script = dir / "plots.gp";
  const std::string csv = gp_string((dir / "rounds.csv").string());
  {
    std::ofstream gp(script, std::ios::trunc);
    gp << "set datafile separator ','\n"
       << "set key autotitle columnhead\n"
       << "set terminal pngcairo size 900,560 noenhanced\n"
       << "set grid\nset xlabel 'round'\n"
       << "set output " << gp_string((dir / "accuracy.png").string()) << "\n"
       << "set title " << gp_string(title + ": test accuracy") << "\n"
       << "set ylabel 'accuracy'\nset key bottom right\n"
       << "plot " << csv << " using 1:3 with linespoints title 'test accuracy'\n"
       << "set output " << gp_string((dir / "loss.png").string()) << "\n"
       << "set title " << gp_string(title + ": loss") << "\n"
       << "set ylabel 'loss'\nset key top right\n"
       << "plot " << csv << " using 1:4 with linespoints title 'test loss', " << csv
       << " using 1:5 with linespoints title 'mean training loss'\n";
    if (local) {
      // Columns 15-19: the round's clients on their held-out examples (rounds without any are skipped).
      gp << "set output " << gp_string((dir / "personal.png").string()) << "\n"
         << "set title " << gp_string(title + ": held-out accuracy of the round's clients") << "\n"
         << "set ylabel 'accuracy'\nset key bottom right\n"
         << "plot " << csv << " using 1:($15 > 0 ? $16 : 1/0) with linespoints title 'global, mean', " << csv
         << " using 1:($15 > 0 ? $17 : 1/0) with linespoints title 'global, 10th percentile', " << csv
         << " using 1:($15 > 0 ? $18 : 1/0) with linespoints title 'personal, mean', " << csv
         << " using 1:($15 > 0 ? $19 : 1/0) with linespoints title 'personal, 10th percentile'\n";
    }
    if (!gp) return "cannot write " + script.string() + ": skipping plots";
  }
  const std::string cmd = "gnuplot " + quoted(script.string()) + " 2>" + quoted((dir / "plots.log").string());
  if (std::system(cmd.c_str()) != 0) {
    return "gnuplot failed (see " + (dir / "plots.log").string() + "): plots may be missing";
  }
  std::filesystem::remove(dir / "plots.log");
  return std::nullopt;
}

}  // namespace sotto::sim
