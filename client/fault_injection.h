// Fault injection for tests and simulations: ClientConfig::vanish_after names a step ("task", "advertise",
// "share_keys", "masked_input") after which the client process exits at once without a word (exit code 97), as a
// device that loses power or network would. Empty: never.
#pragma once

#include "client/client_config.h"

namespace sotto::client {

void vanish_if(const ClientConfig& config, const char* step);

}  // namespace sotto::client
