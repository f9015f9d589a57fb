#include "client/state_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/crypto/random.h"
#include "common/util/error.h"
#include "common/util/posix_io.h"

namespace sotto::client {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The file's bytes, at most `limit` of them, wiped when they die.
crypto::SecretBytes read_small_file(const std::filesystem::path& path, std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read the state key file " + path.string() + ": " + std::strerror(errno));
  crypto::SecretBytes bytes(limit + 1);
  std::size_t size = 0;
  while (size < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + size, bytes.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(size);
  return bytes;
}

}  // namespace

StateKey read_state_key_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error("the state key file " + path.string() + " does not exist: make one with `sotto-client keygen "
                "--key-file " + path.string() + "` (state sealed under a lost key cannot be read again)");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error("the state key file " + path.string() + " has mode " + mode +
                ": others may read or change it; run `chmod 600 " + path.string() + "`");
  }
  crypto::SecretBytes text = read_small_file(path, 2 * kStateKeyBytes + 1);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  StateKey key;
  bool ok = text.size() == 2 * kStateKeyBytes;
  for (std::size_t i = 0; ok && i < kStateKeyBytes; ++i) {
    const int high = hex_digit(static_cast<char>(text[2 * i]));
    const int low = hex_digit(static_cast<char>(text[2 * i + 1]));
    ok = high >= 0 && low >= 0;
    key[i] = static_cast<std::uint8_t>(ok ? high * 16 + low : 0);
  }
  if (!ok) {
    throw Error("the state key file " + path.string() + " does not hold a key: it must be 64 hex digits (a 256-bit "
                "key), as `sotto-client keygen` writes");
  }
  return key;
}

void create_state_key_file(const std::filesystem::path& path) {
  const StateKey key = crypto::random_secret<kStateKeyBytes>();
  static constexpr char kDigits[] = "0123456789abcdef";
  crypto::SecretBytes text;
  for (const std::uint8_t byte : key) {
    text.push_back(static_cast<std::uint8_t>(kDigits[byte >> 4]));
    text.push_back(static_cast<std::uint8_t>(kDigits[byte & 15]));
  }
  text.push_back('\n');
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error("cannot create the state key file " + path.string() + ": " + std::strerror(errno) +
                (errno == EEXIST ? " (a key is never replaced: remove the old one yourself if it is no longer needed)"
                                 : ""));
  }
  const bool ok = util::write_all(fd, {reinterpret_cast<const char*>(text.data()), text.size()}) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    throw Error("cannot write the state key file " + path.string() + ": " + std::strerror(saved));
  }
}

}  // namespace sotto::client
