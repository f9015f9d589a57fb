// The C API's ledger (include/sotto/sotto_client.h): the entries as structs, their strings kept per thread.
#include <string>
#include <unordered_map>
#include <vector>

#include "client/c_api_handle.h"
#include "client/ledger.h"
#include "client/state_store.h"

namespace {

using namespace sotto;
using client::c_api::fail;

// The ledger as sotto_client_ledger_size last read it on this thread, per handle (by serial number, never reused):
// its strings stay valid until this thread reads that handle's ledger again, as the header promises. A thread's
// copies go with the thread, or with the handle when it destroys it.
thread_local std::unordered_map<std::uint64_t, std::vector<client::LedgerEntry>> ledger_read;

}  // namespace

namespace sotto::client::c_api {

void forget_ledger_read(const sotto_client& handle) { ledger_read.erase(handle.serial); }

}  // namespace sotto::client::c_api

extern "C" {

sotto_status sotto_client_ledger_size(sotto_client* c, size_t* count) {
  if (!c || !count) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_ledger_size: a null argument");
  std::vector<client::LedgerEntry>& ledger = ledger_read[c->serial];
  try {
    ledger = client::parse_ledger_lines(c->client->ledger_json());
  } catch (const client::StateError& e) {
    return fail(SOTTO_ERROR_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_INTERNAL, e.what());
  }
  *count = ledger.size();
  return SOTTO_OK;
}

sotto_status sotto_client_ledger_entry(sotto_client* c, size_t index, sotto_ledger_entry* out) {
  if (!c || !out) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_ledger_entry: a null argument");
  const auto read = ledger_read.find(c->serial);
  const std::size_t size = read == ledger_read.end() ? 0 : read->second.size();
  if (index >= size) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_ledger_entry: index " + std::to_string(index) +
                                                  " is beyond the " + std::to_string(size) +
                                                  " entries sotto_client_ledger_size read on this thread");
  }
  const client::LedgerEntry& e = read->second[index];
  *out = {e.unix_time,  e.round_id,       e.outcome.c_str(), e.num_examples, e.bytes_sent, e.bytes_received,
          e.train_loss, e.update_l2_norm, e.secure ? 1 : 0,  e.clip_norm,    0,            "",
          0,            0,                0};
  if (e.privacy) {
    out->has_privacy = 1;
    out->privacy_mode = e.privacy->mode.c_str();
    out->noise_multiplier = e.privacy->noise_multiplier;
    out->epsilon = e.privacy->epsilon;
    out->epsilon_stated = e.privacy->epsilon_stated;
  }
  return SOTTO_OK;
}

const char* sotto_client_ledger_reason(sotto_client* c, size_t index) {
  if (!c) return nullptr;
  const auto read = ledger_read.find(c->serial);
  if (read == ledger_read.end() || index >= read->second.size()) return nullptr;
  return read->second[index].reason.c_str();
}

}  // extern "C"
