// SecAgg wire codec: the SecAgg+ message structs (messages.h) to and from their sotto.v1 protobuf forms.
//
// Decoding checks what the types cannot: 32-byte keys and seeds, no index listed twice. A bad message throws
// sotto::Error naming the field, and the caller drops the peer that sent it.
#pragma once

#include "common/secagg/messages.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::secagg {

v1::SecAggAdvertise to_proto(const AdvertiseKeys& m);
AdvertiseKeys from_proto(const v1::SecAggAdvertise& p);

v1::SecAggKeyDirectory to_proto(const KeyDirectory& m);
KeyDirectory from_proto(const v1::SecAggKeyDirectory& p);

v1::SecAggShares to_proto(const std::vector<EncryptedShare>& shares);
std::vector<EncryptedShare> from_proto(const v1::SecAggShares& p);

v1::SecAggUnmaskRequest to_proto(const UnmaskRequest& m);
UnmaskRequest from_proto(const v1::SecAggUnmaskRequest& p);

v1::SecAggAccusation to_proto(const Accusation& m);
Accusation from_proto(const v1::SecAggAccusation& p);

v1::SecAggUnmaskResponse to_proto(const UnmaskResponse& m);
UnmaskResponse from_proto(const v1::SecAggUnmaskResponse& p);

}  // namespace sotto::secagg
