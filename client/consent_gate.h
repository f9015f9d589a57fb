// ConsentGate: the client library's enforcement of the person's consent (consent.h). Nothing reaches the network
// unless it covers the work: a connection's socket is attached here before it connects, and attach() refuses it
// without consent. revoke() records the revocation, then shuts the attached socket down in both directions before
// it returns, so not one byte more leaves the device whatever the client's event loop is doing (training included);
// and it holds until any write of personal data in progress (while_granted) has finished, so that the caller can
// delete that data knowing none is written after. The record persists in the state store when there is one.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>

#include "client/consent.h"

namespace sotto::client {

class StateStore;

// What a revocation deletes from the state directory (after ConsentGate::revoke, so that nothing is written again):
// the saved local models and pending updates, and the ledger with kDeleteLedger (ledger.h: not the accountant).
void delete_personal_data(StateStore& store, OnRevoke on_revoke);

class ConsentGate {
 public:
  // Loads the record from `store` (null: kept in memory only; none stored: never granted).
  explicit ConsentGate(StateStore* store);

  ConsentRecord record() const;
  // Records a grant for `scope` (persisted before it returns) and wakes wait_until_granted(). A grant that no longer
  // covers the attached connection's work narrows consent: that connection is cut as by revoke().
  void grant(ConsentScope scope);
  // Records the revocation and cuts the attached connection; attach() refuses from now on.
  void revoke();
  // How many times revoke() was called: a run() that sees it change stops.
  std::uint64_t revocations() const;

  // Blocks until the record covers `needed` (true) or interrupt() is called (false).
  bool wait_until_granted(ConsentScope needed);
  // Ends every wait, now and later (Client::stop).
  void interrupt();

  // The socket of a connection about to be made: attached (true) only while consent covers `needed`.
  bool attach(int fd, ConsentScope needed);
  // Once connected: whether `fd` is still attached and covered (a revocation between attach() and the connection
  // could not cut a socket that was not yet connected).
  bool allows(int fd) const;
  // Before the socket is closed (its descriptor may be reused).
  void detach(int fd);

  // Runs `write` if consent covers the attached work (or, with none attached, is granted at all), with revocation
  // held off until it returns; false (not run) otherwise.
  bool while_granted(const std::function<void()>& write);

 private:
  void persist(const ConsentRecord& record);

  StateStore* store_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  ConsentRecord record_;
  std::uint64_t revocations_ = 0;
  bool interrupted_ = false;
  void cut_locked();

  int attached_fd_ = -1;
  ConsentScope attached_needs_ = ConsentScope::kNone;
};

}  // namespace sotto::client
