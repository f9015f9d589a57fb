#include "common/crypto/shamir.h"

#include <openssl/bn.h>

#include <algorithm>
#include <memory>
#include <string>

#include "common/crypto/openssl_util.h"
#include "common/util/error.h"

namespace sotto::crypto {
namespace {

struct BnClearFree {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
};
struct BnCtxFree {
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
};
using Bn = std::unique_ptr<BIGNUM, BnClearFree>;
using BnCtx = std::unique_ptr<BN_CTX, BnCtxFree>;

Bn new_bn() {
  Bn bn(BN_new());
  if (!bn) internal::throw_openssl_error("BN_new");
  return bn;
}

BnCtx new_bn_ctx() {
  BnCtx ctx(BN_CTX_secure_new());
  if (!ctx) internal::throw_openssl_error("BN_CTX_new");
  return ctx;
}

void check(int ok, const char* what) {
  if (ok != 1) internal::throw_openssl_error(what);
}

const BIGNUM* prime() {
  static const Bn p = [] {
    BIGNUM* bn = nullptr;
    if (BN_hex2bn(&bn, std::string(kShamirPrimeHex).c_str()) == 0) internal::throw_openssl_error("BN_hex2bn");
    return Bn(bn);
  }();
  return p.get();
}

Bn value_of(const Share& share) {
  Bn y(BN_bin2bn(share.y.data(), static_cast<int>(share.y.size()), nullptr));
  if (!y) internal::throw_openssl_error("BN_bin2bn");
  return y;
}

void check_x(std::uint32_t x) {
  if (x == 0 || x > kShamirMaxHolders) {
    throw Error("crypto: a Shamir share's x must be in 1.." + std::to_string(kShamirMaxHolders) + ", got " +
                std::to_string(x));
  }
}

void check_value(const BIGNUM* y, std::uint32_t x) {
  if (BN_cmp(y, prime()) >= 0) {
    throw Error("crypto: the Shamir share for x = " + std::to_string(x) + " has a value outside the field");
  }
}

// Multiplies a field element by small factors, collecting them in one machine word between reductions.
class WordProduct {
 public:
  WordProduct(BIGNUM* acc, BN_CTX* ctx) : acc_(acc), ctx_(ctx) { check(BN_one(acc_), "BN_one"); }

  void multiply(std::uint64_t factor) {
    if (word_ > UINT64_MAX / factor) flush();
    word_ *= factor;
  }
  void flush() {
    if (word_ == 1) return;
    check(BN_mul_word(acc_, static_cast<BN_ULONG>(word_)), "BN_mul_word");
    check(BN_nnmod(acc_, acc_, prime(), ctx_), "BN_nnmod");
    word_ = 1;
  }

 private:
  static_assert(sizeof(BN_ULONG) == 8, "WordProduct packs factors into a 64-bit BN_ULONG");
  BIGNUM* acc_;
  BN_CTX* ctx_;
  std::uint64_t word_ = 1;
};

}  // namespace

SecretArray<kShamirShareBytes> Share::to_bytes() const {
  SecretArray<kShamirShareBytes> out;
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(x >> (24 - 8 * i));
  std::copy(y.begin(), y.end(), out.begin() + 4);
  return out;
}

Share Share::from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kShamirShareBytes) {
    throw Error("crypto: a Shamir share is " + std::to_string(kShamirShareBytes) + " bytes, got " +
                std::to_string(bytes.size()));
  }
  Share share;
  share.x = (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
            std::uint32_t{bytes[3]};
  check_x(share.x);
  std::copy(bytes.begin() + 4, bytes.end(), share.y.begin());
  check_value(value_of(share).get(), share.x);
  return share;
}

std::vector<Share> split(std::span<const std::uint8_t, kShamirSecretBytes> secret, std::uint32_t t, std::uint32_t n) {
  if (t < 2 || t > n || n > kShamirMaxHolders) {
    throw Error("crypto: Shamir sharing needs 2 <= t <= n <= " + std::to_string(kShamirMaxHolders) +
                ", got t = " + std::to_string(t) + ", n = " + std::to_string(n));
  }
  const BIGNUM* p = prime();
  const BnCtx ctx = new_bn_ctx();
  // f(x) = a_0 + a_1 x + ... + a_{t-1} x^{t-1}, a_0 = the secret, the rest uniform in [0, p).
  std::vector<Bn> coefficients;
  coefficients.reserve(t);
  coefficients.emplace_back(BN_bin2bn(secret.data(), static_cast<int>(secret.size()), nullptr));
  if (!coefficients.back()) internal::throw_openssl_error("BN_bin2bn");
  for (std::uint32_t k = 1; k < t; ++k) {
    coefficients.push_back(new_bn());
    check(BN_priv_rand_range(coefficients.back().get(), p), "BN_priv_rand_range");
  }

  std::vector<Share> shares(n);
  const Bn y = new_bn();
  for (std::uint32_t x = 1; x <= n; ++x) {
    // Horner: y = (...(a_{t-1} x + a_{t-2}) x + ...) x + a_0, reduced after each step.
    check(BN_copy(y.get(), coefficients[t - 1].get()) != nullptr, "BN_copy");
    for (std::uint32_t k = t - 1; k-- > 0;) {
      check(BN_mul_word(y.get(), x), "BN_mul_word");
      check(BN_add(y.get(), y.get(), coefficients[k].get()), "BN_add");
      check(BN_nnmod(y.get(), y.get(), p, ctx.get()), "BN_nnmod");
    }
    Share& share = shares[x - 1];
    share.x = x;
    check(
        BN_bn2binpad(y.get(), share.y.data(), static_cast<int>(share.y.size())) == static_cast<int>(kShamirValueBytes),
        "BN_bn2binpad");
  }
  return shares;
}

ShamirSecret reconstruct(std::span<const Share> shares, std::uint32_t t) {
  if (t < 2) throw Error("crypto: a Shamir threshold is at least 2, got " + std::to_string(t));
  if (shares.size() < t) {
    throw Error("crypto: Shamir reconstruction needs at least t = " + std::to_string(t) + " shares, got " +
                std::to_string(shares.size()));
  }
  std::vector<std::uint32_t> xs;
  xs.reserve(shares.size());
  for (const Share& share : shares) {
    check_x(share.x);
    check_value(value_of(share).get(), share.x);
    xs.push_back(share.x);
  }
  std::sort(xs.begin(), xs.end());
  if (const auto dup = std::adjacent_find(xs.begin(), xs.end()); dup != xs.end()) {
    throw Error("crypto: two Shamir shares have the same x = " + std::to_string(*dup));
  }

  // s = f(0) = sum_i y_i * prod_{j != i} x_j / (x_j - x_i), over the first t shares.
  const BIGNUM* p = prime();
  const BnCtx ctx = new_bn_ctx();
  const Bn sum = new_bn(), numerator = new_bn(), denominator = new_bn(), term = new_bn();
  BN_zero(sum.get());
  const auto used = shares.first(t);
  for (std::size_t i = 0; i < used.size(); ++i) {
    const std::int64_t xi = used[i].x;
    WordProduct num(numerator.get(), ctx.get()), den(denominator.get(), ctx.get());
    bool negative = false;
    for (std::size_t j = 0; j < used.size(); ++j) {
      if (j == i) continue;
      const std::int64_t xj = used[j].x;
      num.multiply(static_cast<std::uint64_t>(xj));
      negative ^= xj < xi;
      den.multiply(static_cast<std::uint64_t>(xj > xi ? xj - xi : xi - xj));
    }
    num.flush();
    den.flush();
    if (negative) check(BN_sub(denominator.get(), p, denominator.get()), "BN_sub");
    if (BN_mod_inverse(denominator.get(), denominator.get(), p, ctx.get()) == nullptr) {
      internal::throw_openssl_error("BN_mod_inverse");
    }
    check(BN_mod_mul(term.get(), numerator.get(), denominator.get(), p, ctx.get()), "BN_mod_mul");
    check(BN_mod_mul(term.get(), term.get(), value_of(used[i]).get(), p, ctx.get()), "BN_mod_mul");
    check(BN_mod_add(sum.get(), sum.get(), term.get(), p, ctx.get()), "BN_mod_add");
  }

  ShamirSecret secret;
  if (BN_num_bytes(sum.get()) > static_cast<int>(kShamirSecretBytes)) {
    throw Error("crypto: the Shamir shares are inconsistent: they interpolate to a value wider than 32 bytes");
  }
  check(BN_bn2binpad(sum.get(), secret.data(), static_cast<int>(secret.size())) == static_cast<int>(kShamirSecretBytes),
        "BN_bn2binpad");
  return secret;
}

}  // namespace sotto::crypto
