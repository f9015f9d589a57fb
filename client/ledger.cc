#include "client/ledger.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/consent.h"
#include "client/state_store.h"
#include "common/util/error.h"

namespace sotto::client {

namespace {

constexpr const char* kLedgerFile = "ledger";
constexpr const char* kSpentFile = "privacy_spent";

nlohmann::json to_json(const LedgerEntry& e) {
  nlohmann::json j{{"unix_time", e.unix_time},
                   {"round", e.round_id},
                   {"outcome", e.outcome},
                   {"examples", e.num_examples},
                   {"bytes_sent", e.bytes_sent},
                   {"bytes_received", e.bytes_received},
                   {"train_loss", e.train_loss},
                   {"update_l2_norm", e.update_l2_norm},
                   {"secure_aggregation", e.secure}};
  if (e.secure) j["clip_norm"] = e.clip_norm;
  if (!e.reason.empty()) j["reason"] = e.reason;
  if (e.privacy) {
    const auto& p = *e.privacy;
    j["privacy"] = {{"mode", p.mode},              {"clip_norm", e.clip_norm},
                    {"noise_multiplier", p.noise_multiplier}, {"honest", p.honest},
                    {"epsilon", p.epsilon},        {"epsilon_stated", p.epsilon_stated}};
    if (p.histogram_noise_multiplier > 0) j["privacy"]["histogram_noise_multiplier"] = p.histogram_noise_multiplier;
    if (e.with_rdp) j["privacy"]["rdp"] = p.rdp;
  }
  return j;
}

LedgerEntry from_json(const nlohmann::json& j) {
  LedgerEntry e;
  e.unix_time = j.at("unix_time").get<double>();
  e.round_id = j.at("round").get<std::uint64_t>();
  e.outcome = j.at("outcome").get<std::string>();
  e.num_examples = j.at("examples").get<std::uint64_t>();
  e.bytes_sent = j.at("bytes_sent").get<std::uint64_t>();
  e.bytes_received = j.at("bytes_received").get<std::uint64_t>();
  e.train_loss = j.at("train_loss").get<double>();
  e.update_l2_norm = j.at("update_l2_norm").get<double>();
  e.secure = j.at("secure_aggregation").get<bool>();
  e.clip_norm = j.value("clip_norm", 0.0);
  e.reason = j.value("reason", std::string());
  if (j.contains("privacy")) {
    const auto& p = j["privacy"];
    e.privacy = round::DeviceCharge{p.at("mode").get<std::string>(), p.at("noise_multiplier").get<double>(),
                                    p.at("honest").get<std::uint32_t>(),
                                    p.value("rdp", std::vector<double>{}), p.at("epsilon").get<double>(),
                                    p.at("epsilon_stated").get<double>(),
                                    p.value("histogram_noise_multiplier", 0.0)};
    e.with_rdp = p.contains("rdp");
  }
  return e;
}

}  // namespace

void Ledger::append(LedgerEntry entry) const {
  entry.unix_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (entry.with_rdp && entry.privacy) {
    std::vector<double> spent = spent_rdp();
    const auto& rdp = entry.privacy->rdp;
    if (spent.empty()) spent.assign(rdp.size(), 0.0);
    if (spent.size() != rdp.size()) throw Error("the device's accountant and this round use different RDP orders");
    for (std::size_t i = 0; i < spent.size(); ++i) spent[i] += rdp[i];
    store_.write(kSpentFile, nlohmann::json{{"rdp", spent}}.dump());  // first: a crash over-counts
  }
  std::string lines = store_.read(kLedgerFile).value_or("");
  lines += to_json(entry).dump();
  lines += '\n';
  store_.write(kLedgerFile, lines);
}

std::string Ledger::json_lines() const {
  return store_.read(kLedgerFile).value_or("");
}

std::vector<LedgerEntry> Ledger::entries() const {
  return parse_ledger_lines(json_lines());
}

std::vector<LedgerEntry> parse_ledger_lines(const std::string& json_lines) {
  std::vector<LedgerEntry> entries;
  std::istringstream lines(json_lines);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    try {
      entries.push_back(from_json(nlohmann::json::parse(line)));
    } catch (const nlohmann::json::exception& e) {
      throw Error("ledger entry " + std::to_string(entries.size() + 1) + " is not one Sotto wrote: " + e.what());
    }
  }
  return entries;
}

std::vector<double> Ledger::spent_rdp() const {
  const auto json = store_.read(kSpentFile);
  if (!json) return {};
  const auto j = nlohmann::json::parse(*json, nullptr, false);
  if (!j.is_object() || !j.contains("rdp") || !j["rdp"].is_array()) {
    throw Error("the device's privacy accountant in " + store_.dir().string() + " is not one Sotto wrote");
  }
  return j["rdp"].get<std::vector<double>>();
}

void Ledger::erase() const {
  store_.remove(kLedgerFile);
}

std::string describe(const LedgerEntry& e) {
  std::ostringstream out;
  out << utc_time(e.unix_time) << "  round " << e.round_id << "  " << e.outcome
      << (e.reason.empty() ? "" : " (" + e.reason + ")") << "  " << e.num_examples
      << " examples  sent " << e.bytes_sent << " B, received " << e.bytes_received << " B  ";
  if (!e.secure) {
    out << "plain update (the aggregator saw it)";
  } else {
    out << "secure aggregation (the aggregator saw only the sum), clipped to L2 " << e.clip_norm;
  }
  if (e.privacy) {
    out << ", " << e.privacy->mode << " DP: noise multiplier " << e.privacy->noise_multiplier
        << ", this device's epsilon " << e.privacy->epsilon << " (stated " << e.privacy->epsilon_stated << ")";
  }
  return out.str();
}

}  // namespace sotto::client
