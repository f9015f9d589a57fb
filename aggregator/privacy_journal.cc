#include "aggregator/privacy_journal.h"

#include <nlohmann/json.hpp>

#include "common/util/durable_append.h"
#include "common/util/error.h"
#include "common/util/json_lines.h"

namespace sotto::aggregator {

std::vector<double> PrivacyJournal::load(std::size_t orders, const std::vector<double>& checkpointed) const {
  std::vector<double> sum(orders, 0.0);
  std::size_t line = 0;
  for (const auto& record : util::read_json_lines(path_)) {
    ++line;
    std::vector<double> rdp;
    try {
      rdp = record.at("rdp").get<std::vector<double>>();
    } catch (const nlohmann::json::exception& e) {
      throw Error("privacy journal " + path_.string() + ": line " + std::to_string(line) +
                  " has no valid \"rdp\" array (" + e.what() + "); restore the journal from a backup");
    }
    if (rdp.size() != orders) {
      throw Error("privacy journal " + path_.string() + ": line " + std::to_string(line) + " has " +
                  std::to_string(rdp.size()) + " RDP orders, expected " + std::to_string(orders));
    }
    for (std::size_t i = 0; i < orders; ++i) sum[i] += rdp[i];
  }
  for (std::size_t i = 0; i < checkpointed.size() && i < orders; ++i) {
    if (sum[i] < checkpointed[i] * (1 - 1e-9)) {
      throw Error("privacy journal " + path_.string() + " holds less privacy spent than the checkpoint recorded (" +
                  std::to_string(line) + " lines): charges were lost. Restore the journal from a backup; the " +
                  "aggregator will not start and under-count the privacy it has spent");
    }
  }
  return sum;
}

void PrivacyJournal::append(const RoundCharge& c, const PrivacyOptions& o, std::uint32_t honest) const {
  const auto& p = c.ddg;
  nlohmann::json line = {{"round", c.round_id},           {"mode", privacy_mode_name(o.mode)},
                               {"clients", c.clients},          {"min_survivors", o.min_survivors},
                               {"honest", honest},              {"bits", p.bits},
                               {"clip_norm", p.clip_norm},      {"noise_multiplier", p.noise_multiplier},
                               {"scale", p.scale},              {"l2_bound", p.l2_bound},
                               {"local_stddev", p.local_stddev}, {"dimension", p.dimension},
                               {"padded", p.padded},            {"delta", o.delta},
                               {"epsilon", c.epsilon.epsilon},  {"order", c.epsilon.order},
                               {"sampling", kNoAmplification},  {"rdp", c.rdp}};
  if (c.histogram) {  // the accuracy histograms' own mechanism, whose RDP the line's includes
    line["accuracy_histogram"] = {{"bins", c.histogram->dimension / 2},
                                  {"noise_multiplier", c.histogram->noise_multiplier},
                                  {"local_stddev", c.histogram->local_stddev}};
  }
  if (c.count_weight > 0) {  // adaptive clipping: clip_norm above bounds [update, count]; this is the update's
    line["update_clip_norm"] = c.update_clip_norm;
    line["count_weight"] = c.count_weight;
  }
  try {
    util::append_line_durably(path_, line.dump());
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + ": round " + std::to_string(c.round_id) + "'s sum is not unmasked");
  }
}

}  // namespace sotto::aggregator
