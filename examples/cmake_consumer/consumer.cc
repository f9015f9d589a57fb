// Links the installed C++ API (the static libraries and their dependencies) and uses it without a network.
#include <iostream>

#include "client/client_config.h"
#include "client/consent.h"

int main() {
  using namespace sotto::client;
  const ConsentRecord granted{true, ConsentScope::kAll, 1.0};
  const ConsentRecord parsed = parse_consent_record(consent_record_json(granted));
  std::cout << "consumer_cpp: " << describe(parsed) << '\n';
  return parsed == granted && covers(parsed, ConsentScope::kTraining) ? 0 : 1;
}
