// Fault injection for tests and simulations: ClientConfig::vanish_after names a step ("task", "advertise",
// "share_keys", "masked_input") after which the client process exits at once without a word (exit code 97), as a
// device that loses power or network would. Empty: never. And a malicious client, for the hardening tests:
// ClientConfig::claim_examples and scale_update tamper with a plain upload after the participant has made it, and
// ClientConfig::garble_shares with the SecAgg+ share ciphertexts it sends.
#pragma once

#include "client/client_config.h"
#include "common/round/messages.h"

namespace sotto::client {

void vanish_if(const ClientConfig& config, const char* step);
void tamper_with_upload(const ClientConfig& config, round::out::Upload& upload);
void tamper_with_shares(const ClientConfig& config, round::out::ShareKeys& shares);

}  // namespace sotto::client
