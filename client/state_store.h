// StateStore: the device's files at rest — the consent record, the ledger and (with personalization) the personal
// model — each sealed with AES-256-GCM under a key derived from the app's state key (state_key.h), and each written
// atomically (a crash leaves the old file or the new one, util/atomic_file.h).
//
// Every write takes the store's next generation, a counter bound into the file's associated data with its name,
// format version and the store's own random id, and recorded for that file in a sealed manifest. So a wrong key, a tampered byte, a file renamed
// to another's name or an older copy of a file put back (an old "granted" consent, a ledger with entries removed)
// are each refused with a sotto::Error that says which, and nothing is deleted or overwritten. Putting the whole
// directory back to an older state is caught only against the generation the app keeps beside its key:
// generation() after each change (on_change tells it), passed back as min_generation when the store is opened.
//
// A crash between a change's file and its manifest is finished when the store next opens: a write's file newer
// than the manifest is adopted, and the file of a removal (its tombstone in the manifest records the generation it
// had) is deleted.
//
// One process at a time: the store holds an exclusive lock on <dir>/lock for its lifetime. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/state_key.h"
#include "common/util/error.h"

namespace sotto::client {

// What the store throws: the app's state, not its config or the network, is what needs attention.
class StateError : public Error {
 public:
  using Error::Error;
};

class StateStore {
 public:
  // Opens (creating) `dir`. Throws sotto::Error when another process holds it, when its manifest does not open under
  // `key` (a wrong key or a tampered manifest, each named), or when the manifest is older than min_generation.
  StateStore(std::filesystem::path dir, const StateKey& key, std::uint64_t min_generation = 0);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // The contents of file `name`, or nothing when there is none. Throws sotto::Error for a file that does not
  // authenticate, or that is older than the manifest says its latest is.
  std::optional<std::string> read(std::string_view name) const;
  // Replaces (or creates) file `name` atomically. Names are [a-z0-9._-], 1 to 64 characters.
  void write(std::string_view name, std::string_view contents);
  // Deletes file `name` (nothing when there is none); an old copy put back later is refused.
  void remove(std::string_view name);
  // The files the manifest lists.
  std::vector<std::string> names() const;

  std::uint64_t generation() const;
  // Called after each write or remove with the new generation, on the thread that made the change and outside the
  // store's lock (the callback may use the store, and change it: that change is told after it returns), and after
  // any DeferNotifications on that thread ends.
  // Generations are told in increasing order; when two threads race, the older one may be skipped.
  void on_change(std::function<void(std::uint64_t)> callback);
  const std::filesystem::path& dir() const { return dir_; }

  // While one lives on a thread, the changes that thread makes to `store` are told (on_change) when the last one
  // on it ends instead of at once: a caller that writes under a lock of its own (the consent gate) declares one
  // before taking that lock, so that the app's callback runs after it is released and may take it. Null: nothing.
  class DeferNotifications {
   public:
    explicit DeferNotifications(StateStore* store);
    ~DeferNotifications() noexcept(false);  // the callback's exception, unless one is already unwinding
    DeferNotifications(const DeferNotifications&) = delete;
    DeferNotifications& operator=(const DeferNotifications&) = delete;

   private:
    StateStore* store_;
    int unwinding_at_start_;
  };

 private:
  std::filesystem::path file_path(std::string_view name) const;
  std::string seal(std::string_view name, std::uint64_t generation, std::string_view contents) const;
  std::string open_sealed(std::string_view name, const std::filesystem::path& path, const std::string& bytes,
                          std::uint64_t& generation) const;
  void load_manifest(std::uint64_t min_generation);
  void finish_cut_changes();
  // The generation of a file that authenticates as `name`, or nothing.
  std::optional<std::uint64_t> authentic_generation(std::string_view name, const std::filesystem::path& path) const;
  void save_manifest(std::uint64_t generation);
  void notify(std::uint64_t generation);
  // This thread's DeferNotifications, per store.
  static std::map<const StateStore*, int>& deferring();

  std::filesystem::path dir_;
  crypto::SecretArray<32> seal_key_;
  std::array<std::uint8_t, 8> key_id_{};
  std::uint8_t version_ = 0;  // the sealed format of this store's files (the manifest's; 1 before store ids)
  std::string store_id_;      // random per state directory (version 2), in every file's header and associated data
  int lock_fd_ = -1;
  mutable std::mutex mutex_;
  std::uint64_t generation_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> files_;  // name -> the generation of its latest write
  std::map<std::string, std::uint64_t, std::less<>> removed_;  // name -> the generation its file had when removed
  std::recursive_mutex notify_mutex_;  // orders the callbacks; recursive: a callback may change the store again
  std::uint64_t notified_ = 0;  // the last generation told
  std::atomic<std::uint64_t> pending_{0};  // the newest generation to tell (set without the lock)
  bool notifying_ = false;      // a callback is running on the thread holding notify_mutex_
  std::function<void(std::uint64_t)> on_change_;
};

}  // namespace sotto::client
