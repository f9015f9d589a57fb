// OpenSSL glue used by the crypto .cc files (not part of the public API): owning handles for EVP objects, the
// algorithms Sotto uses fetched once per process, and errors that carry OpenSSL's own reason.
//
// Fetched algorithm objects are immutable and safe to share between threads; contexts are not and live per call.
#pragma once

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace sotto::crypto::internal {

struct EvpDeleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, EvpDeleter>;
using PKey = std::unique_ptr<EVP_PKEY, EvpDeleter>;
using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, EvpDeleter>;
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, EvpDeleter>;

// Throws sotto::Error("crypto: <what>: <OpenSSL's queued reasons>") and clears OpenSSL's error queue.
[[noreturn]] void throw_openssl_error(std::string_view what);

// The algorithms, fetched from the default library context on first use; throws if the provider lacks one.
const EVP_CIPHER* aes_128_gcm();
const EVP_CIPHER* aes_256_gcm();
const EVP_CIPHER* aes_128_ctr();
EVP_KDF* hkdf_kdf();

// A new cipher context; throws on allocation failure.
CipherCtx new_cipher_ctx();

// The bytes of a string, e.g. a domain-separation label.
inline std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace sotto::crypto::internal
