#include "client/consent.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/util/error.h"

namespace sotto::client {

std::vector<std::string> consent_scope_names(ConsentScope scope) {
  std::vector<std::string> names;
  if (covers(scope, ConsentScope::kTraining)) names.emplace_back("training");
  if (covers(scope, ConsentScope::kAnalytics)) names.emplace_back("analytics");
  return names;
}

ConsentScope consent_scope_from_names(const std::vector<std::string>& names) {
  unsigned scope = 0;
  for (const auto& name : names) {
    if (name == "training") {
      scope |= static_cast<unsigned>(ConsentScope::kTraining);
    } else if (name == "analytics") {
      scope |= static_cast<unsigned>(ConsentScope::kAnalytics);
    } else {
      throw Error("\"" + name + "\" is not a consent scope: the scopes are \"training\" and \"analytics\"");
    }
  }
  return static_cast<ConsentScope>(scope);
}

std::string consent_record_json(const ConsentRecord& r) {
  return nlohmann::json{{"granted", r.granted}, {"scope", consent_scope_names(r.scope)}, {"unix_time", r.unix_time}}
      .dump();
}

ConsentRecord parse_consent_record(const std::string& json) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object() || !j.contains("granted") || !j["granted"].is_boolean() || !j.contains("scope") ||
      !j["scope"].is_array() || !j.contains("unix_time") || !j["unix_time"].is_number()) {
    throw Error("the consent record is not one Sotto wrote");
  }
  ConsentRecord r;
  r.granted = j["granted"].get<bool>();
  r.scope = consent_scope_from_names(j["scope"].get<std::vector<std::string>>());
  r.unix_time = j["unix_time"].get<double>();
  return r;
}

std::string utc_time(double unix_time) {
  const std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

std::string describe(const ConsentRecord& r) {
  if (r.unix_time == 0) return "never granted";
  const std::string when = utc_time(r.unix_time);
  if (!r.granted) return "revoked on " + when;
  std::string scope;
  for (const auto& name : consent_scope_names(r.scope)) scope += (scope.empty() ? "" : " and ") + name;
  return "granted for " + scope + " on " + when;
}

}  // namespace sotto::client
