#include "client/state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/crypto/authenticated_encryption.h"
#include "common/crypto/hkdf.h"
#include "common/crypto/openssl_util.h"
#include "common/crypto/random.h"
#include "common/util/atomic_file.h"
#include "common/util/error.h"
#include "common/util/file.h"
#include "common/util/posix_io.h"

namespace sotto::client {

namespace {

namespace fs = std::filesystem;

// A sealed file: magic (8 bytes, the last one the format version) || key id (8) || store id (16, version 2) ||
// generation (8, big-endian) || nonce || AES-256-GCM ciphertext || tag. The associated data binds the label (which
// names the version), the store id, the name and the generation. The store id is random per state directory, so
// that a file sealed under the same key for another directory does not open here. Stores that version 1 made (no
// store id) stay version 1.
constexpr std::string_view kMagicPrefix{"SOTTOST", 7};
constexpr std::uint8_t kVersion = 2;
constexpr std::size_t kStoreIdBytes = 16;
constexpr std::size_t kMaxHeaderBytes = 8 + 8 + kStoreIdBytes + 8;
constexpr std::string_view kManifest = "manifest";
constexpr std::string_view kSuffix = ".sealed";

void append_big_endian(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(value >> (8 * i)));
}

std::uint64_t big_endian_at(std::string_view bytes, std::size_t offset) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value = value << 8 | static_cast<std::uint8_t>(bytes[offset + i]);
  return value;
}

struct SealedHeader {
  std::uint8_t version = 0;
  std::string_view key_id;    // 8 bytes
  std::string_view store_id;  // 16 bytes; empty in version 1
  std::uint64_t generation = 0;
  std::size_t size = 0;       // of the header
};

std::size_t header_size(std::uint8_t version) { return 8 + 8 + (version >= 2 ? kStoreIdBytes : 0) + 8; }

// The header of `bytes` (which it points into), or nothing for what is not a sealed file of a known version.
std::optional<SealedHeader> parse_header(std::string_view bytes) {
  if (bytes.size() < 8 || bytes.substr(0, kMagicPrefix.size()) != kMagicPrefix) return std::nullopt;
  const auto version = static_cast<std::uint8_t>(bytes[7]);
  if (version != 1 && version != 2) return std::nullopt;
  const std::size_t size = header_size(version);
  if (bytes.size() < size) return std::nullopt;
  return SealedHeader{version, bytes.substr(8, 8), version >= 2 ? bytes.substr(16, kStoreIdBytes) : std::string_view(),
                      big_endian_at(bytes, size - 8), size};
}

std::string associated_data(std::uint8_t version, std::string_view store_id, std::string_view name,
                            std::uint64_t generation) {
  std::string ad = version >= 2 ? "sotto-state-v2" : "sotto-state-v1";
  ad.append(store_id);
  append_big_endian(ad, name.size(), 2);
  ad.append(name);
  append_big_endian(ad, generation, 8);
  return ad;
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool valid_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' && name != kManifest;
  for (const char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
  return ok;
}

void check_name(std::string_view name) {
  if (!valid_name(name)) {
    throw StateError("\"" + std::string(name) + "\" cannot name a state file: use 1 to 64 of a-z, 0-9, '.', '_', '-' "
                "(not starting with '.', and not \"manifest\")");
  }
}

// The generation a sealed file's header claims (not yet authenticated), or nothing for what is not a sealed file.
std::optional<std::uint64_t> claimed_generation(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string header(kMaxHeaderBytes, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  header.resize(static_cast<std::size_t>(in.gcount()));
  const auto parsed = parse_header(header);
  return parsed ? std::optional(parsed->generation) : std::nullopt;
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
    finish_cut_changes();
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
  std::string out(kMagicPrefix);
  out.push_back(static_cast<char>(version_));
  out.append(reinterpret_cast<const char*>(key_id_.data()), key_id_.size());
  out.append(store_id_);
  append_big_endian(out, generation, 8);
  const auto sealed = crypto::seal(std::span<const std::uint8_t, 32>(seal_key_),
                                   as_bytes(associated_data(version_, store_id_, name, generation)),
                                   as_bytes(contents));
  out.append(reinterpret_cast<const char*>(sealed.data()), sealed.size());
  return out;
}

std::string StateStore::open_sealed(std::string_view name, const fs::path& path, const std::string& bytes,
                                    std::uint64_t& generation) const {
  const std::string altered = "the state file " + path.string() +
                              " was altered or corrupted: it does not authenticate. Nothing was changed; restore it "
                              "from a backup, or remove it (losing what it held)";
  const auto header = parse_header(bytes);
  if (!header || bytes.size() < header->size + crypto::kAeadOverheadBytes) throw StateError(altered);
  if (header->key_id != std::string_view(reinterpret_cast<const char*>(key_id_.data()), key_id_.size())) {
    throw StateError("the state file " + path.string() + " was sealed under a different state key: supply the key "
                "this state directory was made with");
  }
  if (header->version != version_ || header->store_id != store_id_) {
    throw StateError("the state file " + path.string() + " belongs to another state directory sealed under the same "
                     "key: it was copied here. Nothing was changed; remove it");
  }
  generation = header->generation;
  const auto plain = crypto::open(std::span<const std::uint8_t, 32>(seal_key_),
                                  as_bytes(associated_data(version_, store_id_, name, generation)),
                                  as_bytes(std::string_view(bytes).substr(header->size)));
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
    version_ = kVersion;
    store_id_.resize(kStoreIdBytes);
    crypto::random_bytes({reinterpret_cast<std::uint8_t*>(store_id_.data()), store_id_.size()});
    save_manifest(0);  // a new store: from now on a missing manifest means tampering, even if the first write is cut
    return;
  }
  const std::string bytes = util::read_file(path);
  if (const auto header = parse_header(bytes)) {  // the store's version and id, authenticated with the manifest
    version_ = header->version;
    store_id_ = header->store_id;
  }
  std::uint64_t generation = 0;
  const nlohmann::json manifest = nlohmann::json::parse(open_sealed(kManifest, path, bytes, generation), nullptr, false);
  if (!manifest.is_object() || manifest.value("generation", std::uint64_t{0}) != generation ||
      !manifest.contains("files") || !manifest["files"].is_object()) {
    throw StateError("the state manifest " + path.string() + " is not one Sotto wrote");
  }
  for (const auto& [name, file_generation] : manifest["files"].items()) {
    files_[name] = file_generation.get<std::uint64_t>();
  }
  if (manifest.contains("removed") && manifest["removed"].is_object()) {  // absent before tombstones
    for (const auto& [name, file_generation] : manifest["removed"].items()) {
      removed_[name] = file_generation.get<std::uint64_t>();
    }
  }
  generation_ = generation;
  if (generation_ < min_generation) {
    throw StateError("the state directory " + dir_.string() + " was put back to an older state (generation " +
                std::to_string(generation_) + "; the app's last is " + std::to_string(min_generation) +
                "). Nothing was changed; restore the latest copy");
  }
}

std::optional<std::uint64_t> StateStore::authentic_generation(std::string_view name, const fs::path& path) const {
  try {
    std::uint64_t generation = 0;
    open_sealed(name, path, util::read_file(path), generation);
    return generation;
  } catch (const Error&) {
    return std::nullopt;  // read() names what is wrong with it, when the app asks for it
  }
}

// A crash between a change's two steps leaves the directory ahead of its manifest. A write's file renamed into place
// whose manifest update was cut off is newer than the manifest: it is adopted, so that no later write reuses its
// generation and an older copy put back is refused. A removal whose unlink was cut off leaves the file at the very
// generation its tombstone records (an older one is a copy put back, which read() refuses): it is deleted now.
void StateStore::finish_cut_changes() {
  std::uint64_t adopted = 0;
  bool deleted = false;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().stem().string();
    if (entry.path().extension() != kSuffix || !valid_name(name)) continue;
    const auto claimed = claimed_generation(entry.path());
    const auto tomb = removed_.find(name);
    const bool cut_removal = tomb != removed_.end() && !files_.contains(name) && claimed == tomb->second;
    if (!claimed || (*claimed <= generation_ && !cut_removal)) continue;  // the usual case: read() checks it
    const auto generation = authentic_generation(name, entry.path());
    if (generation != claimed) continue;
    if (*generation > generation_) {
      files_[name] = *generation;
      removed_.erase(name);
      adopted = std::max(adopted, *generation);
      spdlog::info("state: adopted {} (generation {}), written just before a crash cut off its manifest update",
                   entry.path().string(), *generation);
    } else if (::unlink(entry.path().c_str()) == 0) {
      spdlog::info("state: deleted {}, whose removal a crash cut short", entry.path().string());
      deleted = true;
    } else {  // read() answers that it is deleted all the same
      spdlog::warn("state: cannot delete {}, whose removal a crash cut short: {}", entry.path().string(),
                   std::strerror(errno));
    }
  }
  if (adopted > 0) {
    generation_ = adopted;
    save_manifest(generation_);
  }
  if (deleted) util::sync_directory(dir_);
}

void StateStore::save_manifest(std::uint64_t generation) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [name, file_generation] : files_) files[name] = file_generation;
  nlohmann::json removed = nlohmann::json::object();
  for (const auto& [name, file_generation] : removed_) removed[name] = file_generation;
  const nlohmann::json manifest{{"generation", generation}, {"files", files}, {"removed", removed}};
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
  const auto tomb = removed_.find(name);
  // The file of a removal whose unlink failed: deleted, as the manifest says (the next open finishes it).
  if (listed == files_.end() && tomb != removed_.end() && generation == tomb->second) return std::nullopt;
  if (listed != files_.end() && generation == listed->second) return contents;
  std::string why;
  if (listed != files_.end()) {
    why = "the latest is " + std::to_string(listed->second);
  } else if (tomb != removed_.end()) {
    why = "the file was deleted, its latest copy at generation " + std::to_string(tomb->second);
  } else {
    why = "this store has no such file: it was deleted, or copied from another state directory";
  }
  throw StateError("the state file " + path.string() + " is an old copy put back (generation " +
                   std::to_string(generation) + "; " + why + "). Nothing was changed; restore the latest copy or " +
                   "remove it");
}

void StateStore::write(std::string_view name, std::string_view contents) {
  check_name(name);
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = generation_ + 1;
    util::write_file_atomically(file_path(name), seal(name, generation, contents));
    // The file is in place: memory follows it even if the manifest cannot be written now (the next change writes
    // it, and the next open adopts the file after a crash), so no later write reuses its generation.
    files_[std::string(name)] = generation;
    removed_.erase(std::string(name));
    generation_ = generation;
    save_manifest(generation);
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
    const auto files = files_;
    const auto removed = removed_;
    if (listed != files_.end()) {
      removed_[std::string(name)] = listed->second;  // its tombstone: the generation of the file being deleted
      files_.erase(listed);
    }
    generation = generation_ + 1;
    try {
      save_manifest(generation);
    } catch (...) {  // nothing changed on disk: nor in memory
      files_ = files;
      removed_ = removed;
      throw;
    }
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

std::map<const StateStore*, int>& StateStore::deferring() {
  thread_local std::map<const StateStore*, int> count;
  return count;
}

StateStore::DeferNotifications::DeferNotifications(StateStore* store)
    : store_(store), unwinding_at_start_(std::uncaught_exceptions()) {
  if (store_) ++deferring()[store_];
}

StateStore::DeferNotifications::~DeferNotifications() noexcept(false) {
  if (!store_) return;
  auto& count = deferring();
  if (--count[store_] > 0) return;
  count.erase(store_);
  try {
    store_->notify(0);  // tells what was deferred, if anything
  } catch (...) {
    if (std::uncaught_exceptions() > unwinding_at_start_) return;  // already unwinding: keep the first error
    throw;
  }
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
  for (std::uint64_t seen = pending_.load(); seen < generation && !pending_.compare_exchange_weak(seen, generation);) {
  }
  // A thread that defers takes no lock here: it may hold one (the consent gate's) that a running callback waits for.
  if (const auto d = deferring().find(this); d != deferring().end() && d->second > 0) return;  // told at its end
  std::lock_guard lock(notify_mutex_);
  if (notifying_) return;  // the callback's own change: the loop below tells it
  notifying_ = true;
  try {
    while (pending_.load() > notified_) {
      notified_ = pending_.load();
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
