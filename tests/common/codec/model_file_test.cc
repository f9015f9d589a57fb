#include "common/codec/model_file.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/codec/model_stream.h"
#include "common/net/frame.h"
#include "common/util/error.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::codec {
namespace {

namespace fs = std::filesystem;
using model::DType;
using model::ModelParameters;
using model::Tensor;

// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sotto-model-file-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Tensor filled(const std::string& name, DType dtype, std::vector<std::int64_t> shape, unsigned seed) {
  Tensor t{name, dtype, std::move(shape), {}};
  t.data.resize(model::element_count(t.shape) * model::dtype_size(dtype));
  for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<std::byte>((i * 131 + seed) & 0xFF);
  return t;
}

ModelParameters small_model(unsigned seed = 1) {
  std::vector<Tensor> ts;
  ts.push_back(filled("fc1.weight", DType::kFloat32, {10, 4}, seed));
  ts.push_back(filled("fc1.bias", DType::kFloat32, {10}, seed + 1));
  ts.push_back(filled("empty", DType::kFloat64, {0}, seed + 2));
  ts.push_back(filled("steps", DType::kInt64, {}, seed + 3));
  return ModelParameters(std::move(ts));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_error(const fs::path& p) {
  try {
    read_model_file(p);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("read_model_file accepted " << p);
  return {};
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string record(const google::protobuf::MessageLite& m) {
  const std::string body = m.SerializeAsString();
  const auto h = net::encode_frame_header(static_cast<std::uint32_t>(body.size()));
  return std::string(reinterpret_cast<const char*>(h.data()), h.size()) + body;
}

}  // namespace

TEST_CASE("a model file round-trips the model and the round counters", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "global.sotto";
  ModelFile in{17, 16, small_model()};
  write_model_file(path, in);
  const ModelFile out = read_model_file(path);
  CHECK(out.next_round_id == 17);
  CHECK(out.completed_rounds == 16);
  CHECK(out.model == in.model);
  CHECK(read_bytes(path).substr(0, 8) == "SOTTOMF2");
  CHECK(out.format_version == 2);
}

TEST_CASE("a model file holds tensors larger than one file chunk", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "big.sotto";
  std::vector<Tensor> ts;
  ts.push_back(filled("big", DType::kFloat32, {5, 1024, 1024 / 4 + 3}, 9));  // ~5 MiB: two 4 MiB chunks
  ts.push_back(filled("tail", DType::kUInt8, {3}, 10));
  ModelFile in{2, 1, ModelParameters(std::move(ts))};
  write_model_file(path, in);
  CHECK(read_model_file(path).model == in.model);
}

TEST_CASE("an empty model round-trips", "[codec][file]") {
  TempDir dir;
  write_model_file(dir.path() / "m", ModelFile{});
  const ModelFile out = read_model_file(dir.path() / "m");
  CHECK(out.model.empty());
  CHECK(out.next_round_id == 1);
  CHECK(out.completed_rounds == 0);
}

TEST_CASE("write_model_file replaces an existing file and leaves no temporary file behind", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "ckpt.sotto";
  write_model_file(path, ModelFile{2, 1, small_model(1)});
  write_model_file(path, ModelFile{3, 2, small_model(50)});
  CHECK(names_in(dir.path()) == std::vector<std::string>{"ckpt.sotto"});
  const ModelFile out = read_model_file(path);
  CHECK(out.next_round_id == 3);
  CHECK(out.model == small_model(50));
  CHECK_FALSE(out.model == small_model(1));
}

TEST_CASE("write_model_file into a missing directory throws naming the path", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "no-such-dir" / "m.sotto";
  CHECK_THROWS_WITH(write_model_file(path, ModelFile{}),
                    Catch::Contains((dir.path() / "no-such-dir").string()) && Catch::Contains("cannot create"));
}

TEST_CASE("reading a missing model file throws naming the file", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "absent.sotto";
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("No such file"));
}

TEST_CASE("reading a file that is not a model file throws naming the file and the bad magic", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "notes.txt";
  write_bytes(path, "this is not a model file at all");
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("bad magic"));
  write_bytes(path, "SOTT");
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("bad magic"));
  write_bytes(path, "");
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("bad magic"));
}

TEST_CASE("reading a truncated model file throws naming the file, wherever it was cut", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "ckpt.sotto";
  write_model_file(path, ModelFile{5, 4, small_model()});
  const std::string whole = read_bytes(path);
  // Just after the magic, inside the header's length prefix, inside the header, between records, inside a chunk,
  // and one byte short of the end.
  for (std::size_t keep : {std::size_t{8}, std::size_t{10}, std::size_t{20}, whole.size() / 2, whole.size() - 1}) {
    INFO("kept " << keep << " of " << whole.size() << " bytes");
    write_bytes(path, whole.substr(0, keep));
    const std::string err = read_error(path);
    CHECK_THAT(err, Catch::Contains(path.string()) && Catch::Contains("truncated"));
  }
}

TEST_CASE("reading a model file whose manifest announces far more than the file holds throws, without allocating",
          "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "damaged.sotto";
  v1::CheckpointHeader header;
  auto* spec = header.mutable_model()->add_tensors();
  spec->set_name("w");
  spec->set_dtype(v1::DTYPE_FLOAT32);
  spec->add_shape(1LL << 40);  // 4 TiB
  header.mutable_model()->set_total_bytes(4ULL << 40);
  write_bytes(path, "SOTTOMF1" + record(header));
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("damaged"));

  // The same with total_bytes left at 0, so that only the shapes give the size away.
  header.mutable_model()->set_total_bytes(0);
  write_bytes(path, "SOTTOMF1" + record(header));
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("inconsistent"));
}

TEST_CASE("reading a model file with a chunk out of place throws naming the file", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "shuffled.sotto";
  v1::CheckpointHeader header;
  auto* spec = header.mutable_model()->add_tensors();
  spec->set_name("w");
  spec->set_dtype(v1::DTYPE_UINT8);
  spec->add_shape(4);
  header.mutable_model()->set_total_bytes(4);
  v1::TensorChunk c;
  c.set_tensor_index(0);
  c.set_offset(2);
  c.set_data("ab");
  write_bytes(path, "SOTTOMF1" + record(header) + record(c) + record(c));
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("inconsistent") &&
                                   Catch::Contains("at offset 0"));
}

TEST_CASE("a model file carries the strategy's name and state beside the model", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "checkpoint.sotto";
  ModelFile in{4, 3, small_model(1), "fedadam", small_model(2)};
  write_model_file(path, in);
  const ModelFile out = read_model_file(path);
  CHECK(out.model == in.model);
  CHECK(out.strategy == "fedadam");
  CHECK(out.strategy_state == in.strategy_state);
  CHECK_FALSE(out.strategy_state == out.model);
}

TEST_CASE("a flipped bit anywhere in a model file's records fails its checksum, naming the record", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "checkpoint.sotto";
  write_model_file(path, ModelFile{4, 3, small_model(1), "fedadam", small_model(2)});
  const std::string whole = read_bytes(path);
  // In the header's bytes, in the first tensor's data, and in the last byte of the strategy state.
  for (std::size_t at : {std::size_t{8 + 8 + 3}, whole.size() / 2, whole.size() - 1}) {
    INFO("bit flipped at byte " << at << " of " << whole.size());
    std::string damaged = whole;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
    write_bytes(path, damaged);
    const std::string err = read_error(path);
    CHECK_THAT(err, Catch::Contains(path.string()) && Catch::Contains("fails its checksum") &&
                        Catch::Contains("record"));
  }
}

TEST_CASE("a format-1 model file (no checksums) still reads", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "old.sotto";
  const ModelParameters m = small_model(3);
  v1::CheckpointHeader header;
  header.set_next_round_id(6);
  header.set_completed_rounds(5);
  *header.mutable_model() = make_manifest(m);
  std::string bytes = "SOTTOMF1" + record(header);
  for_each_chunk(m, 1u << 20, [&](v1::TensorChunk&& chunk) { bytes += record(chunk); });
  write_bytes(path, bytes);
  // An empty strategy state needs no chunk; the header's default manifest is empty.
  const ModelFile out = read_model_file(path);
  CHECK(out.format_version == 1);
  CHECK(out.next_round_id == 6);
  CHECK(out.model == m);
  CHECK(out.strategy_state.empty());
}

TEST_CASE("a model file of a newer format is refused by its version, saying what to do", "[codec][file]") {
  TempDir dir;
  const fs::path path = dir.path() / "future.sotto";
  write_model_file(path, ModelFile{2, 1, small_model(1)});
  std::string bytes = read_bytes(path);
  bytes[7] = '7';
  write_bytes(path, bytes);
  CHECK_THAT(read_error(path), Catch::Contains(path.string()) && Catch::Contains("format version 7") &&
                                   Catch::Contains("newer than this build reads"));
}


TEST_CASE("a model file written by reference holds what the owning write holds, byte for byte", "[codec][file]") {
  TempDir dir;
  std::vector<Tensor> ts;
  ts.push_back(filled("big", DType::kFloat32, {9, 1024, 1024 / 4}, 3));  // 9 MiB: the writer flushes on the way
  const ModelFile owning{8, 7, ModelParameters(std::move(ts)), "fedadam", small_model(4), "{\"round\":7}",
                         {{"mallory", 2}}, {0.5, 1.5}, 1.25};
  write_model_file(dir.path() / "owning", owning);
  write_model_file(dir.path() / "by-ref", ModelFileRef{.next_round_id = 8,
                                                       .completed_rounds = 7,
                                                       .model = &owning.model,
                                                       .strategy = "fedadam",
                                                       .strategy_state = &owning.strategy_state,
                                                       .round_record = "{\"round\":7}",
                                                       .offences = &owning.offences,
                                                       .privacy_rdp = owning.privacy_rdp,
                                                       .clip_norm = 1.25});
  const std::string bytes = read_bytes(dir.path() / "by-ref");
  CHECK(bytes == read_bytes(dir.path() / "owning"));
  CHECK(bytes == encode_model_file(owning));
  const ModelFile back = read_model_file(dir.path() / "by-ref");
  CHECK(back.model == owning.model);
  CHECK(back.strategy_state == owning.strategy_state);
  CHECK(back.offences == owning.offences);
  CHECK(back.clip_norm == 1.25);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"by-ref", "owning"});
  CHECK_THROWS_WITH(write_model_file(dir.path() / "none", ModelFileRef{}), Catch::Contains("no model"));
}

}  // namespace sotto::codec
