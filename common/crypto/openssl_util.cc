#include "common/crypto/openssl_util.h"

#include <openssl/err.h>

#include <string>

#include "common/util/error.h"

namespace sotto::crypto::internal {
namespace {

struct CipherFree {
  void operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
};
struct KdfFree {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};

EVP_CIPHER* fetch_cipher(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) throw_openssl_error(std::string("EVP_CIPHER_fetch(") + name + ")");
  return cipher;
}

}  // namespace

void throw_openssl_error(std::string_view what) {
  std::string message = "crypto: " + std::string(what) + " failed";
  unsigned long code = 0;
  const char* separator = ": ";
  while ((code = ERR_get_error()) != 0) {
    char reason[256];
    ERR_error_string_n(code, reason, sizeof reason);
    message += separator;
    message += reason;
    separator = "; ";
  }
  throw Error(message);
}

const EVP_CIPHER* aes_128_gcm() {
  static const std::unique_ptr<EVP_CIPHER, CipherFree> cipher(fetch_cipher("AES-128-GCM"));
  return cipher.get();
}

const EVP_CIPHER* aes_256_gcm() {
  static const std::unique_ptr<EVP_CIPHER, CipherFree> cipher(fetch_cipher("AES-256-GCM"));
  return cipher.get();
}

const EVP_CIPHER* aes_128_ctr() {
  static const std::unique_ptr<EVP_CIPHER, CipherFree> cipher(fetch_cipher("AES-128-CTR"));
  return cipher.get();
}

EVP_KDF* hkdf_kdf() {
  static const std::unique_ptr<EVP_KDF, KdfFree> kdf([] {
    EVP_KDF* k = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (k == nullptr) throw_openssl_error("EVP_KDF_fetch(HKDF)");
    return k;
  }());
  return kdf.get();
}

CipherCtx new_cipher_ctx() {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw_openssl_error("EVP_CIPHER_CTX_new");
  return ctx;
}

}  // namespace sotto::crypto::internal
