// Secret bytes: containers for key material, seeds, shares and plaintexts that wipe their memory with
// OPENSSL_cleanse when they let it go, so a secret does not outlive its holder in freed heap or a dead stack frame.
//
// SecretBytes is a std::vector whose allocator cleanses every buffer before returning it (on destruction and on
// reallocation alike). SecretArray<N> is a std::array that cleanses itself in its destructor; it converts to
// std::span like the array it is. Copies are independent secrets, each wiped when it dies. Neither type hides the
// secret from the code that holds it: comparisons with == are not constant-time (use CRYPTO_memcmp for that).
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace sotto::crypto {

// A std::allocator that wipes each block before freeing it.
template <typename T>
struct CleansingAllocator {
  using value_type = T;

  CleansingAllocator() = default;
  template <typename U>
  CleansingAllocator(const CleansingAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    OPENSSL_cleanse(p, n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }

  template <typename U>
  bool operator==(const CleansingAllocator<U>&) const noexcept {
    return true;
  }
};

using SecretBytes = std::vector<std::uint8_t, CleansingAllocator<std::uint8_t>>;

template <std::size_t N>
struct SecretArray : std::array<std::uint8_t, N> {
  ~SecretArray() { OPENSSL_cleanse(this->data(), N); }
};

}  // namespace sotto::crypto
