#include "client/ledger.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/util/durable_append.h"
#include "common/util/error.h"
#include "common/util/json_lines.h"

namespace sotto::client {

void Ledger::append(const LedgerEntry& e) const {
  const auto now = std::chrono::system_clock::now();
  nlohmann::json j{{"unix_time", std::chrono::duration<double>(now.time_since_epoch()).count()},
                   {"round", e.round_id},
                   {"outcome", e.outcome},
                   {"examples", e.num_examples},
                   {"bytes_sent", e.bytes_sent},
                   {"bytes_received", e.bytes_received},
                   {"train_loss", e.train_loss},
                   {"update_l2_norm", e.update_l2_norm},
                   {"secure_aggregation", e.secure}};
  if (e.secure) j["clip_norm"] = e.clip_norm;
  if (e.privacy) {
    const auto& p = *e.privacy;
    j["privacy"] = {{"mode", p.mode},              {"clip_norm", e.clip_norm},
                    {"noise_multiplier", p.noise_multiplier}, {"honest", p.honest},
                    {"epsilon", p.epsilon},        {"epsilon_stated", p.epsilon_stated}};
    if (e.with_rdp) j["privacy"]["rdp"] = p.rdp;
  }
  util::append_line_durably(path_, j.dump());  // fsynced: a "sending" line must outlive a power cut
}

std::vector<double> Ledger::spent_rdp() const {
  std::vector<double> sum;
  for (const auto& line : util::read_json_lines(path_)) {
    if (!line.contains("privacy") || !line["privacy"].contains("rdp")) continue;
    const auto rdp = line["privacy"]["rdp"].get<std::vector<double>>();
    if (sum.empty()) sum.assign(rdp.size(), 0.0);
    if (rdp.size() != sum.size()) throw Error("the ledger " + path_.string() + " mixes RDP order grids");
    for (std::size_t i = 0; i < rdp.size(); ++i) sum[i] += rdp[i];
  }
  return sum;
}

}  // namespace sotto::client
