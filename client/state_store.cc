#include "client/state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/crypto/authenticated_encryption.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/openssl_util.h"
#include "common/util/atomic_file.h"
#include "common/util/error.h"
#include "common/util/file.h"
#include "common/util/posix_io.h"

namespace sotto::client {

namespace {

namespace fs = std::filesystem;

// A sealed file: magic (8 bytes, the last one the format version) || key id (8) || generation (8, big-endian) ||
// nonce || AES-256-GCM ciphertext || tag. The associated data binds the label, the format version, the name and
// the generation.
constexpr std::string_view kMagic{"SOTTOST\x01", 8};
constexpr std::size_t kHeaderBytes = 8 + 8 + 8;
constexpr char kAssociatedDataLabel[] = "sotto-state-v1";
constexpr std::string_view kManifest = "manifest";
constexpr std::string_view kSuffix = ".sealed";

void append_big_endian(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(value >> (8 * i)));
}

std::uint64_t big_endian_at(const std::string& bytes, std::size_t offset) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value = value << 8 | static_cast<std::uint8_t>(bytes[offset + i]);
  return value;
}

std::string associated_data(std::string_view name, std::uint64_t generation) {
  std::string ad(kAssociatedDataLabel);
  append_big_endian(ad, name.size(), 2);
  ad.append(name);
  append_big_endian(ad, generation, 8);
  return ad;
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void check_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' && name != kManifest;
  for (const char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
  if (!ok) {
    throw StateError("\"" + std::string(name) + "\" cannot name a state file: use 1 to 64 of a-z, 0-9, '.', '_', '-' "
                "(not starting with '.', and not \"manifest\")");
  }
}

int lock_directory(const fs::path& dir) {
  const fs::path lock = dir / "lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw StateError("cannot open " + lock.string() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(fd);
    throw StateError(saved == EWOULDBLOCK ? "the state directory " + dir.string() +
                                           " is in use by another process: stop that sotto client first (one client "
                                           "per state directory)"
                                     : "cannot lock " + lock.string() + ": " + std::strerror(saved));
  }
  return fd;
}

}  // namespace

StateStore::StateStore(fs::path dir, const StateKey& key, std::uint64_t min_generation) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw StateError("cannot create the state directory " + dir_.string() + ": " + ec.message());
  crypto::hkdf_sha256(key, {}, crypto::internal::bytes_of("sotto-state-seal-v1"), seal_key_);
  crypto::hkdf_sha256(key, {}, crypto::internal::bytes_of("sotto-state-key-id-v1"), key_id_);
  lock_fd_ = lock_directory(dir_);
  try {
    load_manifest(min_generation);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

StateStore::~StateStore() {
  ::close(lock_fd_);  // releases the lock
}

fs::path StateStore::file_path(std::string_view name) const {
  return dir_ / (std::string(name) + std::string(kSuffix));
}

std::string StateStore::seal(std::string_view name, std::uint64_t generation, std::string_view contents) const {
  std::string out(kMagic);
  out.append(reinterpret_cast<const char*>(key_id_.data()), key_id_.size());
  append_big_endian(out, generation, 8);
  const auto sealed = crypto::seal(std::span<const std::uint8_t, 32>(seal_key_),
                                   as_bytes(associated_data(name, generation)), as_bytes(contents));
  out.append(reinterpret_cast<const char*>(sealed.data()), sealed.size());
  return out;
}

std::string StateStore::open_sealed(std::string_view name, const fs::path& path, const std::string& bytes,
                                    std::uint64_t& generation) const {
  const std::string altered = "the state file " + path.string() +
                              " was altered or corrupted: it does not authenticate. Nothing was changed; restore it "
                              "from a backup, or remove it (losing what it held)";
  if (bytes.size() < kHeaderBytes + crypto::kAeadOverheadBytes || bytes.compare(0, kMagic.size(), kMagic) != 0) {
    throw StateError(altered);
  }
  if (std::memcmp(bytes.data() + 8, key_id_.data(), key_id_.size()) != 0) {
    throw StateError("the state file " + path.string() + " was sealed under a different state key: supply the key "
                "this state directory was made with");
  }
  generation = big_endian_at(bytes, 16);
  const auto plain = crypto::open(std::span<const std::uint8_t, 32>(seal_key_),
                                  as_bytes(associated_data(name, generation)),
                                  as_bytes(std::string_view(bytes).substr(kHeaderBytes)));
  if (!plain) throw StateError(altered);
  return {plain->begin(), plain->end()};
}

void StateStore::load_manifest(std::uint64_t min_generation) {
  const fs::path path = file_path(kManifest);
  if (!fs::exists(path)) {
    bool sealed_files = false;
    for (const auto& entry : fs::directory_iterator(dir_)) sealed_files |= entry.path().extension() == kSuffix;
    if (sealed_files || min_generation > 0) {
      throw StateError("the state directory " + dir_.string() + " has no manifest" +
                  (min_generation > 0 ? " though the app's last generation is " + std::to_string(min_generation)
                                      : std::string(" though it holds sealed files")) +
                  ": it was emptied or replaced outside Sotto. Restore it from a backup");
    }
    save_manifest(0);  // a new store: from now on a missing manifest means tampering, even if the first write is cut
    return;
  }
  std::uint64_t generation = 0;
  const nlohmann::json manifest =
      nlohmann::json::parse(open_sealed(kManifest, path, util::read_file(path), generation), nullptr, false);
  if (!manifest.is_object() || manifest.value("generation", std::uint64_t{0}) != generation ||
      !manifest.contains("files") || !manifest["files"].is_object()) {
    throw StateError("the state manifest " + path.string() + " is not one Sotto wrote");
  }
  for (const auto& [name, file_generation] : manifest["files"].items()) {
    files_[name] = file_generation.get<std::uint64_t>();
  }
  generation_ = generation;
  if (generation_ < min_generation) {
    throw StateError("the state directory " + dir_.string() + " was put back to an older state (generation " +
                std::to_string(generation_) + "; the app's last is " + std::to_string(min_generation) +
                "). Nothing was changed; restore the latest copy");
  }
}

void StateStore::save_manifest(std::uint64_t generation) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [name, file_generation] : files_) files[name] = file_generation;
  const nlohmann::json manifest{{"generation", generation}, {"files", files}};
  util::write_file_atomically(file_path(kManifest), seal(kManifest, generation, manifest.dump()));
}

std::optional<std::string> StateStore::read(std::string_view name) const {
  check_name(name);
  std::lock_guard lock(mutex_);
  const fs::path path = file_path(name);
  const auto listed = files_.find(name);
  if (!fs::exists(path)) {
    if (listed == files_.end()) return std::nullopt;
    throw StateError("the state file " + path.string() + " is missing though the manifest records it (generation " +
                std::to_string(listed->second) + "): it was removed outside Sotto. Restore it from a backup");
  }
  std::uint64_t generation = 0;
  std::string contents = open_sealed(name, path, util::read_file(path), generation);
  // A newer generation than the manifest's is a write whose manifest update a crash cut off.
  const bool stale = listed != files_.end() ? generation < listed->second : generation <= generation_;
  if (stale) {
    throw StateError("the state file " + path.string() + " is an old copy put back (generation " +
                std::to_string(generation) + "; " +
                (listed != files_.end() ? "the latest is " + std::to_string(listed->second)
                                        : "it was deleted by generation " + std::to_string(generation_)) +
                "). Nothing was changed; restore the latest copy or remove it");
  }
  return contents;
}

void StateStore::write(std::string_view name, std::string_view contents) {
  check_name(name);
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = generation_ + 1;
    util::write_file_atomically(file_path(name), seal(name, generation, contents));
    files_[std::string(name)] = generation;
    save_manifest(generation);
    generation_ = generation;
  }
  notify(generation);
}

void StateStore::remove(std::string_view name) {
  check_name(name);
  std::uint64_t generation = 0;
  std::string unlink_error;
  {
    std::lock_guard lock(mutex_);
    const fs::path path = file_path(name);
    const auto listed = files_.find(name);
    if (listed == files_.end() && !fs::exists(path)) return;
    if (listed != files_.end()) files_.erase(listed);
    generation = generation_ + 1;
    save_manifest(generation);
    generation_ = generation;
    // From here an old copy put back is refused, whether or not the file goes.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      unlink_error = "cannot delete " + path.string() + ": " + std::strerror(errno);
    }
  }
  notify(generation);  // the generation moved, whatever happens to the file
  if (!unlink_error.empty()) throw StateError(unlink_error);
  util::sync_directory(dir_);
}

std::vector<std::string> StateStore::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, generation] : files_) names.push_back(name);
  return names;
}

std::uint64_t StateStore::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

void StateStore::on_change(std::function<void(std::uint64_t)> callback) {
  std::lock_guard lock(notify_mutex_);
  on_change_ = std::move(callback);
}

// After the store's lock is released, so that the callback may use the store. Changes racing on two threads may
// reach here out of order: a generation older than one already told is not told. A change the callback itself
// makes is told after the callback returns, by the loop, not from inside it: the app only ever sees the generation
// grow.
void StateStore::notify(std::uint64_t generation) {
  std::lock_guard lock(notify_mutex_);
  pending_ = std::max(pending_, generation);
  if (notifying_) return;  // the callback's own change: the loop below tells it
  notifying_ = true;
  try {
    while (pending_ > notified_) {
      notified_ = pending_;
      const auto callback = on_change_;  // a copy: the callback may replace itself
      if (callback) callback(notified_);
    }
  } catch (...) {
    notifying_ = false;
    throw;
  }
  notifying_ = false;
}

}  // namespace sotto::client
