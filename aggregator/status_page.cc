#include "aggregator/status_page.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace sotto::aggregator {

namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

const char* phase_name(RoundCoordinator::Phase p) {
  switch (p) {
    case RoundCoordinator::Phase::kIdle: return "idle";
    case RoundCoordinator::Phase::kCheckIn: return "check-in";
    case RoundCoordinator::Phase::kTraining: return "training";
    case RoundCoordinator::Phase::kRecording: return "recording";
    case RoundCoordinator::Phase::kFinished: return "finished";
  }
  return "?";
}

double number_or(const nlohmann::json& j, const char* key, double fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string progress_section(const RoundCoordinator::Progress* p) {
  if (!p) return "<p>Starting: checking the checkpoint; no client is admitted yet.</p>\n";
  std::ostringstream out;
  const bool finished = p->phase == RoundCoordinator::Phase::kFinished;
  // Once finished, round_id is the one that would have come next.
  out << "<p>" << (finished ? "Finished after round" : "Round") << " <span id=\"round\">"
      << (finished && p->round_id > 0 ? p->round_id - 1 : p->round_id) << "</span>, phase <span id=\"phase\">"
      << phase_name(p->phase) << "</span>; <span id=\"completed\">" << p->completed_rounds << "</span> of "
      << p->total_rounds << " rounds completed.</p>\n<p>Cohort: <span id=\"cohort\">" << p->cohort
      << "</span> clients";
  if (p->phase == RoundCoordinator::Phase::kTraining) {
    if (p->secure_step) {
      out << ", secure aggregation step " << secagg::step_key(*p->secure_step) << ": " << p->uploaded
          << " answered";
    } else {
      out << ", " << p->uploaded << " updates in";
    }
  }
  out << "; " << p->waiting << " waiting for the next round.</p>\n";
  return out.str();
}

// Accuracy (0..1, left axis) and loss (0..its maximum, right axis) per round, as two polylines.
std::string chart(const std::vector<nlohmann::json>& rounds) {
  std::vector<std::pair<double, double>> accuracy, loss;
  for (const auto& r : rounds) {
    const double round = number_or(r, "round", 0);
    if (r.contains("test_accuracy")) accuracy.emplace_back(round, number_or(r, "test_accuracy", 0));
    if (r.contains("test_loss")) loss.emplace_back(round, number_or(r, "test_loss", 0));
  }
  if (accuracy.empty()) return "<p id=\"chart\">No evaluated round yet.</p>\n";
  constexpr double kW = 640, kH = 240, kPad = 40;
  double first = accuracy.front().first, last = accuracy.back().first, max_loss = 0;
  for (const auto& [x, y] : loss) max_loss = std::max(max_loss, y);
  if (last <= first) last = first + 1;
  if (max_loss <= 0) max_loss = 1;
  const auto points = [&](const std::vector<std::pair<double, double>>& series, double top) {
    std::string s;
    for (const auto& [x, y] : series) {
      s += fixed(kPad + (x - first) / (last - first) * (kW - 2 * kPad), 1) + "," +
           fixed(kH - kPad - std::clamp(y / top, 0.0, 1.0) * (kH - 2 * kPad), 1) + " ";
    }
    return s;
  };
  std::ostringstream out;
  out << "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
      << "\" role=\"img\" aria-label=\"test accuracy and loss per round\">\n"
      << "<rect x=\"" << kPad << "\" y=\"" << kPad << "\" width=\"" << kW - 2 * kPad << "\" height=\"" << kH - 2 * kPad
      << "\" fill=\"none\" stroke=\"#999\"/>\n"
      << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"" << points(accuracy, 1.0) << "\"/>\n"
      << "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"" << points(loss, max_loss) << "\"/>\n"
      << "<text x=\"" << kPad << "\" y=\"" << kPad - 10 << "\" fill=\"#1f77b4\">accuracy (0 to 1)</text>\n"
      << "<text x=\"" << kW - kPad << "\" y=\"" << kPad - 10 << "\" fill=\"#d62728\" text-anchor=\"end\">loss (0 to "
      << fixed(max_loss, 2) << ")</text>\n"
      << "<text x=\"" << kPad << "\" y=\"" << kH - 12 << "\">round " << first << "</text>\n"
      << "<text x=\"" << kW - kPad << "\" y=\"" << kH - 12 << "\" text-anchor=\"end\">round " << last << "</text>\n"
      << "</svg>\n";
  return out.str();
}

std::string rounds_table(const std::vector<nlohmann::json>& rounds) {
  std::ostringstream out;
  out << "<table id=\"rounds\">\n<tr><th>round</th><th>status</th><th>survivors</th><th>test accuracy</th>"
         "<th>test loss</th><th>epsilon</th></tr>\n";
  const std::size_t from = rounds.size() > 20 ? rounds.size() - 20 : 0;
  for (std::size_t i = from; i < rounds.size(); ++i) {
    const auto& r = rounds[i];
    const auto cell = [&](const char* key, int digits) {
      return r.contains(key) && r.at(key).is_number() ? fixed(r.at(key).get<double>(), digits) : std::string("-");
    };
    std::string epsilon = "-";
    if (r.contains("privacy") && r.at("privacy").is_object()) {
      const auto& p = r.at("privacy");
      const char* key = p.contains("epsilon") && p.at("epsilon").is_number() ? "epsilon" : "epsilon_released";
      if (p.contains(key) && p.at(key).is_number()) epsilon = fixed(p.at(key).get<double>(), 3);
    }
    out << "<tr class=\"round\"><td class=\"id\">" << cell("round", 0) << "</td><td class=\"status\">"
        << escape(r.value("status", std::string("?"))) << "</td><td>" << cell("survivors", 0)
        << "</td><td class=\"accuracy\">" << cell("test_accuracy", 4) << "</td><td class=\"loss\">"
        << cell("test_loss", 4) << "</td><td>" << epsilon << "</td></tr>\n";
  }
  out << "</table>\n";
  return out.str();
}

}  // namespace

std::string render_status_page(const RoundCoordinator::Progress* progress, const std::vector<nlohmann::json>& rounds) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      << "<meta http-equiv=\"refresh\" content=\"" << kStatusRefreshSeconds << "\">\n"
      << "<title>sotto-aggregator status</title>\n"
      << "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>\n"
      << "</head><body>\n<h1>sotto-aggregator</h1>\n"
      << progress_section(progress) << "<h2>Test accuracy and loss</h2>\n"
      << chart(rounds) << "<h2>Rounds</h2>\n"
      << rounds_table(rounds) << "<p>This page reloads every " << kStatusRefreshSeconds << " s.</p>\n"
      << "</body></html>\n";
  return out.str();
}

}  // namespace sotto::aggregator
