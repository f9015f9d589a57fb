#include "common/crypto/authenticated_encryption.h"

#include <openssl/err.h>

#include <climits>
#include <cstring>
#include <string>

#include "common/crypto/openssl_util.h"
#include "common/crypto/random.h"
#include "common/util/error.h"

namespace sotto::crypto {
namespace {

// EVP lengths are ints; shares are a few dozen bytes, so anything near the limit is a caller's bug.
constexpr std::size_t kMaxAeadInputBytes = INT_MAX / 2;

void check_length(std::size_t size, const char* what) {
  if (size > kMaxAeadInputBytes) throw Error(std::string("crypto: AES-GCM ") + what + " is too long");
}

void append_big_endian(std::vector<std::uint8_t>& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

std::vector<std::uint8_t> seal_with(const EVP_CIPHER* cipher, const char* name, const std::uint8_t* key,
                                    std::span<const std::uint8_t> associated_data,
                                    std::span<const std::uint8_t> plaintext) {
  check_length(associated_data.size(), "associated data");
  check_length(plaintext.size(), "plaintext");
  std::vector<std::uint8_t> sealed(kAeadNonceBytes + plaintext.size() + kAeadTagBytes);
  const std::span<std::uint8_t> nonce(sealed.data(), kAeadNonceBytes);
  std::uint8_t* ciphertext = sealed.data() + kAeadNonceBytes;
  std::uint8_t* tag = ciphertext + plaintext.size();
  random_bytes(nonce);

  const internal::CipherCtx ctx = internal::new_cipher_ctx();
  int length = 0;
  if (EVP_EncryptInit_ex2(ctx.get(), cipher, key, nonce.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ciphertext, &length, plaintext.data(), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ciphertext + length, &length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kAeadTagBytes, tag) != 1) {
    internal::throw_openssl_error(std::string(name) + " seal");
  }
  return sealed;
}

std::optional<SecretBytes> open_with(const EVP_CIPHER* cipher, const char* name, const std::uint8_t* key,
                                     std::span<const std::uint8_t> associated_data,
                                     std::span<const std::uint8_t> sealed) {
  if (sealed.size() < kAeadOverheadBytes) return std::nullopt;
  check_length(associated_data.size(), "associated data");
  check_length(sealed.size(), "sealed message");
  const auto nonce = sealed.first(kAeadNonceBytes);
  const auto ciphertext = sealed.subspan(kAeadNonceBytes, sealed.size() - kAeadOverheadBytes);
  // EVP's SET_TAG takes a non-const pointer but copies the tag.
  std::uint8_t tag[kAeadTagBytes];
  std::memcpy(tag, sealed.data() + sealed.size() - kAeadTagBytes, kAeadTagBytes);

  SecretBytes plaintext(ciphertext.size());
  const internal::CipherCtx ctx = internal::new_cipher_ctx();
  int length = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), cipher, key, nonce.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1) {
    internal::throw_openssl_error(std::string(name) + " open");
  }
  // (An update with a null output buffer would count as associated data: skip it for an empty plaintext.)
  length = 0;
  if (!ciphertext.empty() && EVP_DecryptUpdate(ctx.get(), plaintext.data(), &length, ciphertext.data(),
                                               static_cast<int>(ciphertext.size())) != 1) {
    internal::throw_openssl_error(std::string(name) + " open");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kAeadTagBytes, tag) != 1) {
    internal::throw_openssl_error(std::string(name) + " open (setting the tag)");
  }
  // The tag is checked here; on a mismatch the (unauthenticated) plaintext is wiped as `plaintext` dies.
  if (EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + length, &length) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  return plaintext;
}

}  // namespace

std::vector<std::uint8_t> seal(std::span<const std::uint8_t, kAeadKeyBytes> key,
                               std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> plaintext) {
  return seal_with(internal::aes_128_gcm(), "AES-128-GCM", key.data(), associated_data, plaintext);
}

std::optional<SecretBytes> open(std::span<const std::uint8_t, kAeadKeyBytes> key,
                                std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> sealed) {
  return open_with(internal::aes_128_gcm(), "AES-128-GCM", key.data(), associated_data, sealed);
}

std::vector<std::uint8_t> seal(std::span<const std::uint8_t, kAead256KeyBytes> key,
                               std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> plaintext) {
  return seal_with(internal::aes_256_gcm(), "AES-256-GCM", key.data(), associated_data, plaintext);
}

std::optional<SecretBytes> open(std::span<const std::uint8_t, kAead256KeyBytes> key,
                                std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> sealed) {
  return open_with(internal::aes_256_gcm(), "AES-256-GCM", key.data(), associated_data, sealed);
}

std::vector<std::uint8_t> share_associated_data(std::uint64_t round, std::uint32_t sender, std::uint32_t recipient) {
  std::vector<std::uint8_t> ad(kShareAssociatedDataLabel,
                               kShareAssociatedDataLabel + sizeof(kShareAssociatedDataLabel) - 1);
  ad.reserve(kShareAssociatedDataBytes);
  append_big_endian(ad, round, 8);
  append_big_endian(ad, sender, 4);
  append_big_endian(ad, recipient, 4);
  return ad;
}

}  // namespace sotto::crypto
