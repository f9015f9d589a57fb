// Writes the seed corpus of frame_fuzzer (fuzz/corpus/frame/) into the directory given as the only argument.
//   build-fuzz/bin/frame_fuzz_seeds fuzz/corpus/frame
// Each seed is one split byte (see frame_fuzzer.cc) followed by a stream of frames as a peer would send them.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/codec/model_stream.h"
#include "common/net/frame.h"
#include "sotto/v1/sotto.pb.h"

namespace {

using namespace sotto;

model::Tensor tensor(const std::string& name, model::DType dtype, std::vector<std::int64_t> shape) {
  model::Tensor t{name, dtype, std::move(shape), {}};
  t.data.resize(model::element_count(t.shape) * model::dtype_size(dtype));
  for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<std::byte>(i * 37 + 11);
  return t;
}

std::string chunk_frames(const model::ModelParameters& params, std::size_t chunk_bytes) {
  std::string out;
  codec::for_each_chunk(params, chunk_bytes, [&](v1::TensorChunk&& c) {
    v1::Envelope e;
    *e.mutable_chunk() = std::move(c);
    out += net::encode_frame(e);
  });
  return out;
}

std::string raw_frame(const std::string& payload) {
  const auto h = net::encode_frame_header(static_cast<std::uint32_t>(payload.size()));
  return std::string(reinterpret_cast<const char*>(h.data()), h.size()) + payload;
}

bool write(const std::string& dir, const std::string& name, char split, const std::string& stream) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.put(split);
  out.write(stream.data(), static_cast<std::streamsize>(stream.size()));
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " OUTPUT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;

  {
    v1::Envelope e;
    e.mutable_hello()->set_client_id("client-1");
    e.mutable_hello()->add_capabilities("fedavg");
    e.mutable_hello()->set_auth_token("secret-token");
    ok &= write(dir, "hello", '\x80', net::encode_frame(e));
  }
  {
    std::vector<model::Tensor> ts;
    ts.push_back(tensor("conv.weight", model::DType::kFloat32, {2, 3}));
    ts.push_back(tensor("empty", model::DType::kFloat64, {0}));
    ts.push_back(tensor("bn.num_batches_tracked", model::DType::kInt64, {}));
    ts.push_back(tensor("half", model::DType::kFloat16, {3}));
    const model::ModelParameters params(std::move(ts));
    v1::Envelope admit, task, result;
    admit.mutable_admit()->set_round_id(4);
    auto* t = task.mutable_task();
    t->set_round_id(4);
    t->set_deadline_ms(60000);
    t->mutable_plan()->set_epochs(1);
    t->mutable_plan()->set_batch_size(32);
    t->mutable_plan()->set_optimizer("sgd");
    t->mutable_plan()->set_learning_rate(0.05);
    *t->mutable_model() = codec::make_manifest(params);
    result.mutable_round_result()->set_round_id(4);
    result.mutable_round_result()->set_outcome(v1::ROUND_OUTCOME_COMPLETED);
    ok &= write(dir, "task_with_model", '\x40',
                net::encode_frame(admit) + net::encode_frame(task) + chunk_frames(params, 7) + net::encode_frame(result));
  }
  {
    std::vector<model::Tensor> ts;
    ts.push_back(tensor("ids", model::DType::kInt32, {4}));
    ts.push_back(tensor("q", model::DType::kUInt8, {9}));
    ts.push_back(tensor("s", model::DType::kInt8, {2, 2}));
    const model::ModelParameters params(std::move(ts));
    v1::Envelope update;
    auto* u = update.mutable_update();
    u->set_round_id(4);
    u->set_num_examples(600);
    u->set_train_loss(0.25);
    *u->mutable_delta() = codec::make_manifest(params);
    ok &= write(dir, "update_with_delta", '\x10', net::encode_frame(update) + chunk_frames(params, 16));
  }
  {
    std::vector<model::Tensor> ts;
    ts.push_back(tensor("w", model::DType::kFloat64, {3}));
    ts.push_back(tensor("mask", model::DType::kBool, {5}));
    const model::ModelParameters params(std::move(ts));
    v1::CheckpointHeader header;
    header.set_next_round_id(9);
    header.set_completed_rounds(8);
    *header.mutable_model() = codec::make_manifest(params);
    ok &= write(dir, "checkpoint_header", '\xF0', raw_frame(header.SerializeAsString()) + chunk_frames(params, 5));
  }
  {
    v1::Envelope retry, error, finished;
    retry.mutable_retry_later()->set_delay_ms(1500);
    retry.mutable_retry_later()->set_reason("cohort full");
    error.mutable_error()->set_code(v1::ERROR_CODE_WRONG_ROUND);
    error.mutable_error()->set_message("round 3 is over");
    finished.mutable_finished()->set_rounds_completed(10);
    ok &= write(dir, "control_messages", '\x01',
                net::encode_frame(retry) + net::encode_frame(error) + net::encode_frame(finished));
  }
  {
    v1::Envelope hello;
    hello.mutable_hello()->set_client_id("x");
    // A good frame, then a length prefix far over the limit.
    ok &= write(dir, "oversized_length", '\xFF', net::encode_frame(hello) + std::string("\x7F\xFF\xFF\xFF", 4));
  }
  if (!ok) {
    std::cerr << "cannot write seeds into " << dir << "\n";
    return 1;
  }
  return 0;
}
