// The participant's messages on the wire: conversions between common/round/messages.h and the sotto.v1 protobuf
// messages, in one place for both sides (the aggregator encodes the task's secure assignment with the same code
// the participant decodes it with).
#pragma once

#include "common/round/messages.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::round {

v1::SecAggTask to_proto(const SecureAssignment& assignment);
// A DP plan as the task carries it (inside SecAggTask, or as a plain round's TaskAssignment.plain_dp).
v1::DistributedDpPlan to_proto(const DistributedNoise& noise);
SecureAssignment from_proto(const v1::SecAggTask& proto, std::uint64_t round_id);

// The task as the aggregator sent it, with its model already reassembled from the manifest and chunks.
Task task_from_proto(const v1::TaskAssignment& proto, model::ModelParameters global_model);
RoundResult result_from_proto(const v1::RoundResult& proto);

// The upload header (the manifest of the payload; its chunks follow) and the payload as model tensors.
v1::UpdateUpload upload_header(const out::Upload& upload, const model::ModelParameters& payload);
model::ModelParameters upload_payload(const out::Upload& upload);
model::ModelParameters upload_payload(out::Upload&& upload);  // moves a plain round's delta out

// The frames' envelopes for the other outputs.
v1::Envelope to_envelope(const out::AdvertiseKeys& m);
v1::Envelope to_envelope(const out::ShareKeys& m);
v1::Envelope to_envelope(const out::Accuse& m);
v1::Envelope to_envelope(const out::UnmaskResponse& m);
v1::Envelope to_envelope(const out::ReportError& m);

}  // namespace sotto::round
