// The state key: the 256-bit AES-GCM key that seals the device's state at rest (state_store.h). In an app it comes
// from the OS keystore; sotto-client reads it from a key file of 64 hex digits that only its owner may read
// (mode 0600), made with `sotto-client keygen`.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/crypto/secret.h"

namespace sotto::client {

inline constexpr std::size_t kStateKeyBytes = 32;
using StateKey = crypto::SecretArray<kStateKeyBytes>;

// Throws sotto::Error saying what is wrong and what to do: a missing file, a mode that lets others read or write
// it, anything but 64 hex digits (and a newline).
StateKey read_state_key_file(const std::filesystem::path& path);

// A fresh random key (RAND_bytes) written to a new file with mode 0600. Throws sotto::Error, and never replaces a
// file that exists: losing a key loses the state sealed under it.
void create_state_key_file(const std::filesystem::path& path);

}  // namespace sotto::client
