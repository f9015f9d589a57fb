#include "client/consent_gate.h"

#include <sys/socket.h>

#include <chrono>

#include "client/ledger.h"
#include "client/personal_state.h"
#include "client/state_store.h"

namespace sotto::client {

namespace {

constexpr const char* kConsentFile = "consent";

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void delete_personal_data(StateStore& store, OnRevoke on_revoke) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(store.dir(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("local-round-") && name.ends_with(".sotto")) std::filesystem::remove(entry.path(), ec);
  }
  store.remove(kPersonalStateFile);
  store.remove(kPersonalModelFile);
  if (on_revoke == OnRevoke::kDeleteLedger) Ledger(store).erase();
}

ConsentGate::ConsentGate(StateStore* store) : store_(store) {
  if (!store_) return;
  if (auto json = store_->read(kConsentFile)) record_ = parse_consent_record(*json);
}

ConsentRecord ConsentGate::record() const {
  std::lock_guard lock(mutex_);
  return record_;
}

void ConsentGate::persist(const ConsentRecord& record) {
  if (store_) store_->write(kConsentFile, consent_record_json(record));
  record_ = record;
}

void ConsentGate::grant(ConsentScope scope) {
  // Declared first, ended last: the app's callback runs after the lock is released and the waiters are woken.
  const StateStore::DeferNotifications after_unlock(store_);
  {
    std::lock_guard lock(mutex_);
    if (attached_fd_ >= 0 && !covers(scope, attached_needs_)) cut_locked();
    persist({true, scope, unix_now()});
  }
  changed_.notify_all();
}

void ConsentGate::cut_locked() {
  if (attached_fd_ >= 0) ::shutdown(attached_fd_, SHUT_RDWR);
  ++revocations_;
}

void ConsentGate::revoke() {
  const StateStore::DeferNotifications after_unlock(store_);
  {
    std::lock_guard lock(mutex_);
    // Cut first: a store that cannot be written must not keep the connection open.
    cut_locked();
    const ConsentRecord revoked{false, ConsentScope::kNone, unix_now()};
    record_ = revoked;
    persist(revoked);
  }
  changed_.notify_all();
}

std::uint64_t ConsentGate::revocations() const {
  std::lock_guard lock(mutex_);
  return revocations_;
}

bool ConsentGate::wait_until_granted(ConsentScope needed) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return interrupted_ || (record_.granted && covers(record_.scope, needed)); });
  return !interrupted_;
}

void ConsentGate::interrupt() {
  {
    std::lock_guard lock(mutex_);
    interrupted_ = true;
  }
  changed_.notify_all();
}

bool ConsentGate::attach(int fd, ConsentScope needed) {
  std::lock_guard lock(mutex_);
  if (!covers(record_, needed)) return false;
  attached_fd_ = fd;
  attached_needs_ = needed;
  return true;
}

bool ConsentGate::allows(int fd) const {
  std::lock_guard lock(mutex_);
  return attached_fd_ == fd && covers(record_, attached_needs_);
}

void ConsentGate::detach(int fd) {
  std::lock_guard lock(mutex_);
  if (attached_fd_ == fd) attached_fd_ = -1;
}

bool ConsentGate::while_granted(const std::function<void()>& write) {
  const StateStore::DeferNotifications after_unlock(store_);  // the app's callback may ask for consent
  std::lock_guard lock(mutex_);
  if (!record_.granted || (attached_fd_ >= 0 && !covers(record_.scope, attached_needs_))) return false;
  write();
  return true;
}

}  // namespace sotto::client
