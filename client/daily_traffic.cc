#include "client/daily_traffic.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace sotto::client {

void DailyTraffic::count_ledger(const std::vector<LedgerEntry>& entries, Clock::time_point now) {
  std::map<std::uint64_t, Sent> rounds;  // a round's largest entry
  for (const LedgerEntry& e : entries) {
    const auto at = Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(e.unix_time)));
    Sent& r = rounds[e.round_id];
    if (e.bytes_sent + e.bytes_received >= r.bytes) r = {at, e.bytes_sent + e.bytes_received};
  }
  std::vector<Sent> counted;
  for (const auto& [round, sent] : rounds) {
    if (sent.at <= now && now - sent.at < kWindow) counted.push_back(sent);
  }
  std::sort(counted.begin(), counted.end(), [](const Sent& a, const Sent& b) { return a.at < b.at; });
  sessions_.insert(sessions_.begin(), counted.begin(), counted.end());
}

void DailyTraffic::add(std::uint64_t bytes, Clock::time_point now) {
  if (bytes == 0) return;
  sessions_.push_back({now, bytes});
}

std::uint64_t DailyTraffic::used(Clock::time_point now) {
  forget_before(now - kWindow);
  std::uint64_t total = 0;
  for (const Sent& s : sessions_) total += s.bytes;
  return total;
}

std::optional<std::string> DailyTraffic::refuses(std::uint64_t cap, std::uint64_t more, Clock::time_point now) {
  if (cap == 0) return std::nullopt;
  const std::uint64_t so_far = used(now);
  if (so_far < cap && more <= cap - so_far) return std::nullopt;
  std::string why = "limits.bytes_per_day is " + std::to_string(cap) + " and this device has sent and received " +
                    std::to_string(so_far) + " bytes in the last 24 hours";
  if (more > 0) why += "; this round would take " + std::to_string(more) + " more";
  if (!sessions_.empty()) {
    const auto wait = std::chrono::duration<double>(sessions_.front().at + kWindow - now).count();
    why += "; the oldest of them counts for another " + std::to_string(static_cast<long long>(std::ceil(wait))) +
           " s";
  }
  return why;
}

void DailyTraffic::forget_before(Clock::time_point cutoff) {
  while (!sessions_.empty() && sessions_.front().at <= cutoff) sessions_.pop_front();
}

}  // namespace sotto::client
