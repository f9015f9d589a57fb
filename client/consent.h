// Consent: what the person agreed to — nothing, training (their device trains on their data and shares only the
// protected update), analytics (their device adds its values to secure sums), or both — and when they last said
// so. The record is what the client library obeys (consent_gate.h); it is kept sealed in the state store as the
// file "consent", and `sotto-client consent show` prints it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sotto::client {

enum class ConsentScope : std::uint8_t { kNone = 0, kTraining = 1, kAnalytics = 2, kAll = 3 };

// "training", "analytics": the scope's names (empty for kNone).
std::vector<std::string> consent_scope_names(ConsentScope scope);
// The scope these names give; throws sotto::Error naming an unknown one.
ConsentScope consent_scope_from_names(const std::vector<std::string>& names);
inline bool covers(ConsentScope granted, ConsentScope needed) {
  return (static_cast<unsigned>(granted) & static_cast<unsigned>(needed)) == static_cast<unsigned>(needed);
}

// What a revocation does with the ledger: kept for the person to read, or deleted with the rest.
enum class OnRevoke { kKeepLedger, kDeleteLedger };

struct ConsentRecord {
  bool granted = false;
  ConsentScope scope = ConsentScope::kNone;  // what a grant covers (kNone when revoked)
  double unix_time = 0;                      // when the person last granted or revoked; 0: never asked
  bool operator==(const ConsentRecord&) const = default;
};

// Whether the record grants consent that covers `needed`.
inline bool covers(const ConsentRecord& record, ConsentScope needed) {
  return record.granted && covers(record.scope, needed);
}

// The record as JSON, and back; parse_consent_record throws sotto::Error for anything it did not write.
std::string consent_record_json(const ConsentRecord& record);
ConsentRecord parse_consent_record(const std::string& json);
// A Unix time as a person reads it: "2026-12-01 10:00:00 UTC" (the ledger's and the consent record's).
std::string utc_time(double unix_time);

// One line for a person: "granted for training and analytics on 2026-12-01 10:00:00 UTC", "never granted".
std::string describe(const ConsentRecord& record);

}  // namespace sotto::client
