#include "client/ledger.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/util/error.h"

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
  std::ofstream out(path_, std::ios::app);
  out << j.dump() << '\n';
  if (!out) throw Error("cannot append to the ledger " + path_.string());
}

}  // namespace sotto::client
