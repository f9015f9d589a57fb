#include "common/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

#include <string>

#include "common/crypto/openssl_util.h"
#include "common/util/error.h"

namespace sotto::crypto {

void hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                 std::span<const std::uint8_t> info, std::span<std::uint8_t> out) {
  if (ikm.empty()) throw Error("crypto: HKDF needs non-empty input keying material");
  if (out.empty() || out.size() > kHkdfSha256MaxOutputBytes) {
    throw Error("crypto: HKDF-SHA256 output length must be 1.." + std::to_string(kHkdfSha256MaxOutputBytes) +
                " bytes, asked for " + std::to_string(out.size()));
  }
  internal::KdfCtx ctx(EVP_KDF_CTX_new(internal::hkdf_kdf()));
  if (!ctx) internal::throw_openssl_error("EVP_KDF_CTX_new(HKDF)");

  // OSSL_PARAM wants non-const pointers; OpenSSL only reads these buffers.
  auto octets = [](const char* key, std::span<const std::uint8_t> bytes) {
    return OSSL_PARAM_construct_octet_string(key, const_cast<std::uint8_t*>(bytes.data()), bytes.size());
  };
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
  params[n++] = octets(OSSL_KDF_PARAM_KEY, ikm);
  if (!salt.empty()) params[n++] = octets(OSSL_KDF_PARAM_SALT, salt);
  if (!info.empty()) params[n++] = octets(OSSL_KDF_PARAM_INFO, info);
  params[n] = OSSL_PARAM_construct_end();

  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) internal::throw_openssl_error("HKDF-SHA256");
}

SecretBytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                        std::span<const std::uint8_t> info, std::size_t length) {
  SecretBytes out(length);
  hkdf_sha256(ikm, salt, info, std::span<std::uint8_t>(out));
  return out;
}

}  // namespace sotto::crypto
