// Writes the seed corpus of peer_fuzzer (fuzz/corpus/peer/) into the directory given as the only argument.
//   build-fuzz/bin/peer_fuzz_seeds fuzz/corpus/peer
// A whole SecAgg+ round of four clients as the fuzzer's server session would take it (a hello naming each sender,
// `finished` closing each step; the config, graph seed included, is the fuzzer's session's, so the recorded keys
// and shares stay valid for it), and two checkpoints (mode byte 0xC0).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "common/codec/model_file.h"
#include "common/net/frame.h"
#include "common/secagg/client_session.h"
#include "common/secagg/server_session.h"
#include "common/secagg/wire_codec.h"
#include "sotto/v1/sotto.pb.h"

namespace {

using namespace sotto;

bool write(const std::string& dir, const std::string& name, char mode, const std::string& payload) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.put(mode);
  out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  return static_cast<bool>(out);
}

std::string from(secagg::ClientIndex index) {
  v1::Envelope e;
  e.mutable_hello()->set_client_id(std::to_string(index));
  return net::encode_frame(e);
}

std::string close_step() {
  v1::Envelope e;
  e.mutable_finished()->set_rounds_completed(0);
  return net::encode_frame(e);
}

template <typename Proto>
std::string frame(Proto&& body, Proto* (v1::Envelope::*mutable_body)()) {
  v1::Envelope e;
  *(e.*mutable_body)() = std::forward<Proto>(body);
  return net::encode_frame(e);
}

std::string secure_round_transcript() {
  const secagg::RoundConfig config{1, 4, 3, 2, 4, 32};
  std::vector<secagg::ClientSession> clients;
  for (secagg::ClientIndex i = 0; i < 4; ++i) clients.emplace_back(config, i, std::vector<std::uint32_t>(4, 10 * i));
  secagg::ServerSession server(config);
  std::string out;
  for (secagg::ClientIndex i = 0; i < 4; ++i) {
    const auto keys = clients[i].start();
    server.on_advertise(i, keys);
    out += from(i) + frame(secagg::to_proto(keys), &v1::Envelope::mutable_secagg_advertise);
  }
  out += close_step();
  const auto directories = server.close_advertise();
  for (secagg::ClientIndex i = 0; i < 4; ++i) {
    const auto shares = clients[i].on_key_directory(directories.at(i));
    server.on_encrypted_shares(i, shares);
    out += from(i) + frame(secagg::to_proto(shares.shares), &v1::Envelope::mutable_secagg_shares);
  }
  out += close_step();
  auto routed = server.close_share_keys();
  // Client 3 accuses client 0 with a key that is not its own: it is convicted and the others go on without it.
  const secagg::Accusation unfounded{{{0, {}}}};
  (void)server.on_accusation(3, unfounded);
  out += from(3) + frame(secagg::to_proto(unfounded), &v1::Envelope::mutable_secagg_accusation);
  for (secagg::ClientIndex i = 0; i < 3; ++i) {
    const auto masked = clients[i].on_shares(routed.at(i)).input;
    server.on_masked_input(i, masked);
    v1::Envelope e;
    e.mutable_chunk()->set_data(std::string(reinterpret_cast<const char*>(masked.y.data()), masked.y.size() * 4));
    out += from(i) + net::encode_frame(e);
  }
  out += close_step();
  auto requests = server.close_masked_input();
  for (secagg::ClientIndex i = 0; i < 3; ++i) {
    const auto response = clients[i].on_unmask_request(requests.at(i));
    out += from(i) + frame(secagg::to_proto(response), &v1::Envelope::mutable_secagg_unmask_response);
  }
  return out + close_step();
}

std::string checkpoint_bytes(bool with_state) {
  model::Tensor w{"w", model::DType::kFloat32, {2, 2}, std::vector<std::byte>(16, std::byte{0x3f})};
  model::Tensor steps{"steps", model::DType::kInt64, {}, std::vector<std::byte>(8, std::byte{1})};
  codec::ModelFile file{3, 2, model::ModelParameters({w, steps}), "", {}, R"({"round":2})"};
  if (with_state) {
    file.strategy = "fedadam";
    file.strategy_state = model::ModelParameters({w});
  }
  const auto path = std::filesystem::temp_directory_path() / "sotto-peer-seed.sotto";
  codec::write_model_file(path, file);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " OUTPUT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = write(dir, "secure_round", '\x08', secure_round_transcript());  // 64 KiB frames
  ok &= write(dir, "checkpoint", '\xC0', checkpoint_bytes(false));
  ok &= write(dir, "checkpoint_with_state", '\xC0', checkpoint_bytes(true));
  if (!ok) std::cerr << "cannot write the seeds into " << dir << "\n";
  return ok ? 0 : 1;
}
