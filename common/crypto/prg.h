// The mask PRG of secure aggregation: a seed (16 or 32 bytes) expands to a stream of uint32 words that masks a
// quantized update mod 2^32. Client u adds PRG(b_u) and, for each neighbour v, +PRG(s_uv) if u < v else
// -PRG(s_uv); the aggregator later removes them by the same expansion.
//
// Construction: (key || iv) = HKDF-SHA256(ikm = seed, salt = empty, info = kPrgInfo, 32 bytes); the AES-128 key is
// the first 16 bytes, the initial 128-bit counter block the last 16; the keystream is AES-128-CTR(key, iv) over
// zeros (OpenSSL increments the whole block, big-endian); word i is keystream bytes 4i..4i+3, little-endian.
//
// Speed: the keystream is made 8 KiB at a time (it stays in L1) and added into the accumulator in the same pass,
// by a loop the compiler vectorises (AVX2 where the CPU has it). add_masks applies many masks per pass over a
// cache-sized stretch of the accumulator, so a long vector crosses memory once per group of masks instead of once
// per mask; the server's unmasking and the client's masking use it.
// Invariants: the same seed always gives the same words on every platform; adding a mask then subtracting it
// restores acc; the only memory allocated is one cipher context per mask of a group (at most kMaskGroup) and one
// 8 KiB block on the stack, and the block and every derived key are wiped before returning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sotto::crypto {

inline constexpr std::string_view kPrgInfo = "sotto-secagg-prg-v1";

enum class MaskSign { kAdd, kSubtract };

// One mask to apply: its seed (16 or 32 bytes, borrowed for the call) and whether it is added or subtracted.
struct MaskTerm {
  std::span<const std::uint8_t> seed;
  MaskSign sign = MaskSign::kAdd;
};

// Masks whose seeds it holds (of one type: a secret array, a reconstructed Shamir secret; wiped when let go if the
// type wipes itself), collected one by one and handed to add_masks as terms that borrow them. The client's masking
// and the server's unmasking both collect theirs this way.
template <typename Seed>
class OwnedMasks {
 public:
  void add(Seed seed, MaskSign sign) {
    seeds_.push_back(std::move(seed));
    signs_.push_back(sign);
  }
  // Valid while this object lives and nothing is added.
  std::vector<MaskTerm> terms() const {
    std::vector<MaskTerm> out;
    out.reserve(seeds_.size());
    for (std::size_t i = 0; i < seeds_.size(); ++i) out.push_back({seeds_[i], signs_[i]});
    return out;
  }
  std::size_t size() const { return seeds_.size(); }

 private:
  std::vector<Seed> seeds_;
  std::vector<MaskSign> signs_;
};

// Cipher contexts alive at once in add_masks; more terms take more passes over acc.
inline constexpr std::size_t kMaskGroup = 256;

// acc[i] = acc[i] +/- word_i(seed) mod 2^32 for every i. The seed must be 16 or 32 bytes (sotto::Error otherwise).
void add_mask(std::span<std::uint32_t> acc, std::span<const std::uint8_t> seed, MaskSign sign);

// The same for every term, in one pass over acc per kMaskGroup terms. Every seed is checked before acc changes.
void add_masks(std::span<std::uint32_t> acc, std::span<const MaskTerm> terms);

// The first `words` PRG words of `seed`.
std::vector<std::uint32_t> expand_mask(std::span<const std::uint8_t> seed, std::size_t words);

}  // namespace sotto::crypto
