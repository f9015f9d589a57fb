#include "common/codec/model_digest.h"

#include <openssl/evp.h>

#include <memory>

#include "common/util/error.h"

namespace sotto::codec {

namespace {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw Error("SHA-256 is unavailable");
  }
  void add(const void* data, std::size_t size) {
    if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) throw Error("SHA-256 update failed");
  }
  void add_u64(std::uint64_t value) {
    std::uint8_t bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(value >> (56 - 8 * i));
    add(bytes, sizeof bytes);
  }
  ModelDigest finish() {
    ModelDigest out{};
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &size) != 1 || size != out.size()) throw Error("SHA-256 failed");
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace

ModelDigest model_digest(const model::ModelParameters& model) {
  Sha256 sha;
  sha.add_u64(model.size());
  for (const auto& t : model.tensors()) {
    sha.add_u64(t.name.size());
    sha.add(t.name.data(), t.name.size());
    sha.add_u64(static_cast<std::uint64_t>(t.dtype));
    sha.add_u64(t.shape.size());
    for (auto d : t.shape) sha.add_u64(static_cast<std::uint64_t>(d));
    sha.add_u64(t.data.size());
    sha.add(t.data.data(), t.data.size());
  }
  return sha.finish();
}

std::string to_hex(const ModelDigest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace sotto::codec
