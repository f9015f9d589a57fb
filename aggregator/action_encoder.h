// The coordinator's actions as the envelopes that carry them to clients: one function per message, no I/O. The
// server sends them (and closes after those marked "then close" in round_coordinator.h); the task's secure
// assignment is encoded by round::to_proto, the same code the participant decodes it with.
#pragma once

#include "aggregator/round_coordinator.h"
#include "common/codec/model_digest.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::aggregator {

v1::Envelope encode(const action::Admit& a);
v1::Envelope encode(const action::RetryLater& a);
v1::Envelope encode(const action::SendRoundResult& a);
v1::Envelope encode(const action::SendFinished& a);
v1::Envelope encode(const action::Reject& a);
v1::Envelope encode(const action::SendKeyDirectory& a);
v1::Envelope encode(const action::SendShares& a);
v1::Envelope encode(const action::SendUnmaskRequest& a);

// The task for one connection of `task`: the plan, the model's manifest (its chunks follow) and the deadline; in
// a secure round, the connection's own index in the secure assignment.
v1::Envelope encode_task(const action::SendTask& task, ConnectionId conn, const codec::ModelDigest& model_sha256);

}  // namespace sotto::aggregator
