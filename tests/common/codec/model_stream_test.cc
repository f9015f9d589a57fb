#include "common/codec/model_stream.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "common/net/frame.h"
#include "common/util/error.h"

namespace sotto::codec {
namespace {

using model::DType;
using model::ModelParameters;
using model::Tensor;

// A tensor whose bytes are a recognisable pattern (seeded per tensor), so any misplaced byte shows.
Tensor patterned(const std::string& name, DType dtype, std::vector<std::int64_t> shape, unsigned seed) {
  Tensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(model::element_count(t.shape) * model::dtype_size(t.dtype));
  for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<std::byte>((i * 31 + seed * 7 + 3) & 0xFF);
  return t;
}

// Several dtypes, a scalar, and zero-element tensors at the start, in the middle and at the end.
ModelParameters mixed_model() {
  std::vector<Tensor> ts;
  ts.push_back(patterned("empty.first", DType::kFloat32, {0}, 1));
  ts.push_back(patterned("conv.weight", DType::kFloat32, {4, 3, 3}, 2));
  ts.push_back(patterned("conv.bias", DType::kFloat64, {5}, 3));
  ts.push_back(patterned("empty.middle", DType::kInt64, {3, 0, 2}, 4));
  ts.push_back(patterned("bn.num_batches_tracked", DType::kInt64, {}, 5));
  ts.push_back(patterned("ids", DType::kInt32, {3}, 6));
  ts.push_back(patterned("q", DType::kUInt8, {11}, 7));
  ts.push_back(patterned("q8", DType::kInt8, {2, 2}, 8));
  ts.push_back(patterned("half", DType::kFloat16, {3}, 9));
  ts.push_back(patterned("brain", DType::kBFloat16, {5}, 10));
  ts.push_back(patterned("mask", DType::kBool, {6}, 11));
  ts.push_back(patterned("empty.last", DType::kFloat64, {0, 0}, 12));
  return ModelParameters(std::move(ts));
}

std::vector<v1::TensorChunk> chunks_of(const ModelParameters& params, std::size_t max_chunk_bytes) {
  std::vector<v1::TensorChunk> out;
  for_each_chunk(params, max_chunk_bytes, [&](v1::TensorChunk&& c) { out.push_back(std::move(c)); });
  return out;
}

v1::TensorChunk chunk(std::uint32_t tensor, std::uint64_t offset, std::size_t bytes) {
  v1::TensorChunk c;
  c.set_tensor_index(tensor);
  c.set_offset(offset);
  c.set_data(std::string(bytes, '\x5A'));
  return c;
}

v1::ModelManifest manifest_of(std::initializer_list<std::tuple<std::string, int, std::vector<std::int64_t>>> specs,
                              std::uint64_t total_bytes) {
  v1::ModelManifest m;
  for (const auto& [name, dtype, shape] : specs) {
    auto* s = m.add_tensors();
    s->set_name(name);
    s->set_dtype(static_cast<v1::DType>(dtype));
    for (auto d : shape) s->add_shape(d);
  }
  m.set_total_bytes(total_bytes);
  return m;
}

std::string construction_error(const v1::ModelManifest& m, std::size_t limit) {
  try {
    ModelAssembler assembler(m, limit);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("the manifest was accepted");
  return {};
}

}  // namespace

TEST_CASE("make_manifest lists names, dtypes and shapes in order with the total byte count", "[codec][stream]") {
  const ModelParameters p = mixed_model();
  const v1::ModelManifest m = make_manifest(p);
  REQUIRE(m.tensors_size() == static_cast<int>(p.size()));
  CHECK(m.total_bytes() == p.total_bytes());
  for (int i = 0; i < m.tensors_size(); ++i) {
    const Tensor& t = p.tensors()[static_cast<std::size_t>(i)];
    CHECK(m.tensors(i).name() == t.name);
    CHECK(from_proto(m.tensors(i).dtype()) == t.dtype);
    CHECK(std::vector<std::int64_t>(m.tensors(i).shape().begin(), m.tensors(i).shape().end()) == t.shape);
  }
}

TEST_CASE("dtype conversion round-trips every dtype and rejects unspecified or unknown codes", "[codec][stream]") {
  for (int code = 1; code <= 9; ++code) {
    const auto d = static_cast<DType>(code);
    CHECK(from_proto(to_proto(d)) == d);
  }
  CHECK_THROWS_AS(from_proto(v1::DTYPE_UNSPECIFIED), Error);
  CHECK_THROWS_AS(from_proto(static_cast<v1::DType>(42)), Error);
}

TEST_CASE("a model cut into 7-byte chunks reassembles bit-exactly", "[codec][stream]") {
  const ModelParameters p = mixed_model();
  const auto chunks = chunks_of(p, 7);
  CHECK(chunks.size() == chunk_count(p, 7));
  std::size_t bytes = 0;
  for (const auto& c : chunks) {
    CHECK(c.data().size() >= 1);
    CHECK(c.data().size() <= 7);
    CHECK(p.tensors()[c.tensor_index()].data.size() > 0);  // zero-element tensors get no chunk
    bytes += c.data().size();
  }
  CHECK(bytes == p.total_bytes());

  ModelAssembler assembler(make_manifest(p), p.total_bytes());
  for (const auto& c : chunks) {
    CHECK_FALSE(assembler.complete());
    REQUIRE_FALSE(assembler.accept(c));
  }
  REQUIRE(assembler.complete());
  CHECK(assembler.received_bytes() == p.total_bytes());
  const ModelParameters out = assembler.take();
  CHECK(out == p);
}

TEST_CASE("a model sent as frames through a FrameDecoder fed in odd pieces reassembles bit-exactly",
          "[codec][stream]") {
  const ModelParameters p = mixed_model();
  std::string wire;
  v1::Envelope task;
  task.mutable_task()->set_round_id(3);
  *task.mutable_task()->mutable_model() = make_manifest(p);
  wire += net::encode_frame(task);
  for_each_chunk(p, 5, [&](v1::TensorChunk&& c) {
    v1::Envelope e;
    *e.mutable_chunk() = std::move(c);
    wire += net::encode_frame(e);
  });

  net::FrameDecoder decoder(4096);
  std::vector<v1::Envelope> envelopes;
  for (std::size_t at = 0, step = 1; at < wire.size(); at += step, step = step % 13 + 2) {
    const std::size_t n = std::min(step, wire.size() - at);
    REQUIRE_FALSE(decoder.feed({reinterpret_cast<const std::uint8_t*>(wire.data() + at), n}));
    while (auto payload = decoder.next()) {
      v1::Envelope e;
      REQUIRE_FALSE(net::parse_envelope(*payload, e));
      envelopes.push_back(std::move(e));
    }
  }
  REQUIRE(envelopes.size() == 1 + chunk_count(p, 5));
  REQUIRE(envelopes[0].has_task());
  ModelAssembler assembler(envelopes[0].task().model(), 1 << 20);
  for (std::size_t i = 1; i < envelopes.size(); ++i) {
    REQUIRE(envelopes[i].has_chunk());
    REQUIRE_FALSE(assembler.accept(envelopes[i].chunk()));
  }
  REQUIRE(assembler.complete());
  CHECK(assembler.take() == p);
}

TEST_CASE("a model of only zero-element tensors, or of none, is complete before any chunk", "[codec][stream]") {
  std::vector<Tensor> ts;
  ts.push_back(patterned("a", DType::kFloat32, {0, 4}, 1));
  ts.push_back(patterned("b", DType::kInt8, {0}, 2));
  const ModelParameters empties(std::move(ts));
  CHECK(chunk_count(empties, 7) == 0);
  CHECK(chunks_of(empties, 7).empty());
  ModelAssembler assembler(make_manifest(empties), 0);
  REQUIRE(assembler.complete());
  CHECK(assembler.take() == empties);

  ModelAssembler none(v1::ModelManifest{}, 0);
  CHECK(none.complete());
  CHECK(none.take().empty());
}

TEST_CASE("for_each_chunk and chunk_count refuse a zero chunk size", "[codec][stream]") {
  const ModelParameters p = mixed_model();
  CHECK_THROWS_WITH(chunks_of(p, 0), Catch::Contains("max_chunk_bytes"));
  CHECK_THROWS_WITH(chunk_count(p, 0), Catch::Contains("max_chunk_bytes"));
}

TEST_CASE("ModelAssembler rejects chunks that are not the one it expects, then stays failed", "[codec][stream]") {
  // Tensor 0: 3 float32 = 12 bytes; tensor 1: 2 int64 = 16 bytes.
  ModelAssembler a(manifest_of({{"w", 1, {3}}, {"n", 3, {2}}}, 28), 1024);

  SECTION("an offset that skips ahead") {
    REQUIRE_FALSE(a.accept(chunk(0, 0, 4)));
    const auto err = a.accept(chunk(0, 8, 4));
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("expected a chunk of tensor 0 at offset 4") &&
                         Catch::Contains("got tensor 0 at offset 8"));
  }
  SECTION("a chunk repeated (offset going back)") {
    REQUIRE_FALSE(a.accept(chunk(0, 0, 4)));
    REQUIRE(a.accept(chunk(0, 0, 4)));
  }
  SECTION("the wrong tensor index") {
    const auto err = a.accept(chunk(1, 0, 4));
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("expected a chunk of tensor 0") && Catch::Contains("got tensor 1"));
  }
  SECTION("moving to the next tensor before the current one is full") {
    REQUIRE_FALSE(a.accept(chunk(0, 0, 8)));
    REQUIRE(a.accept(chunk(1, 0, 4)));
  }
  SECTION("a chunk running past the end of its tensor") {
    REQUIRE_FALSE(a.accept(chunk(0, 0, 8)));
    const auto err = a.accept(chunk(0, 8, 5));
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("runs past the end of tensor 'w'") && Catch::Contains("12 bytes"));
  }
  SECTION("an empty chunk") {
    const auto err = a.accept(chunk(0, 0, 0));
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("empty chunk"));
  }
  SECTION("a chunk after the model is complete") {
    REQUIRE_FALSE(a.accept(chunk(0, 0, 12)));
    REQUIRE_FALSE(a.accept(chunk(1, 0, 16)));
    REQUIRE(a.complete());
    const auto err = a.accept(chunk(2, 0, 1));
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("after it was complete"));
  }
  // Whatever the failure, the assembler is unusable afterwards, even for a chunk that would have fitted.
  const auto again = a.accept(chunk(0, 0, 12));
  REQUIRE(again);
  CHECK_THAT(*again, Catch::Contains("already failed"));
  CHECK_FALSE(a.complete());
  CHECK_THROWS_WITH(a.take(), Catch::Contains("not complete"));
}

TEST_CASE("ModelAssembler::take before the last chunk throws", "[codec][stream]") {
  ModelAssembler a(manifest_of({{"w", 5, {4}}}, 4), 1024);
  REQUIRE_FALSE(a.accept(chunk(0, 0, 3)));
  CHECK_FALSE(a.complete());
  CHECK(a.received_bytes() == 3);
  CHECK_THROWS_WITH(a.take(), Catch::Contains("not complete"));
}

TEST_CASE("ModelAssembler rejects a manifest it cannot trust, saying why", "[codec][stream]") {
  SECTION("unspecified dtype") {
    CHECK_THAT(construction_error(manifest_of({{"w", 0, {2}}}, 8), 1024),
               Catch::Contains("tensor 'w'") && Catch::Contains("unknown dtype code 0"));
  }
  SECTION("dtype code from the future") {
    CHECK_THAT(construction_error(manifest_of({{"w", 77, {2}}}, 8), 1024),
               Catch::Contains("tensor 'w'") && Catch::Contains("unknown dtype code 77"));
  }
  SECTION("negative dimension") {
    CHECK_THAT(construction_error(manifest_of({{"w", 1, {2, -3}}}, 0), 1024),
               Catch::Contains("tensor 'w'") && Catch::Contains("negative dimension") && Catch::Contains("[2, -3]"));
  }
  SECTION("duplicate name") {
    CHECK_THAT(construction_error(manifest_of({{"w", 1, {1}}, {"w", 1, {1}}}, 8), 1024),
               Catch::Contains("names tensor 'w' twice"));
  }
  SECTION("empty name") {
    CHECK_THAT(construction_error(manifest_of({{"", 1, {1}}}, 4), 1024), Catch::Contains("empty name"));
  }
  SECTION("total_bytes that disagrees with the shapes") {
    CHECK_THAT(construction_error(manifest_of({{"w", 1, {3}}, {"b", 2, {1}}}, 21), 1024),
               Catch::Contains("total_bytes 21") && Catch::Contains("add up to 20"));
  }
  SECTION("a total over the limit") {
    const std::string err = construction_error(manifest_of({{"w", 1, {100}}, {"b", 1, {200}}}, 1200), 1000);
    CHECK_THAT(err, Catch::Contains("limit of 1000 bytes") && Catch::Contains("max_model_bytes"));
  }
  SECTION("an element count that overflows") {
    CHECK_THAT(construction_error(manifest_of({{"w", 1, {1LL << 40, 1LL << 40}}}, 0), 1024),
               Catch::Contains("tensor 'w'") && Catch::Contains("overflows"));
  }
  SECTION("a byte count that would wrap around to a small number") {
    // 2^62 float64 elements are 2^65 bytes: 0 modulo 2^64, which must not pass for an empty tensor.
    CHECK_THAT(construction_error(manifest_of({{"w", 2, {1LL << 62}}}, 0), std::numeric_limits<std::size_t>::max()),
               Catch::Contains("more than the limit"));
  }
  SECTION("a running total that would wrap around") {
    // 16 + (2^64 - 16) bytes is 0 modulo 2^64.
    const std::int64_t huge = static_cast<std::int64_t>((std::numeric_limits<std::uint64_t>::max() - 15) / 4);
    CHECK_THAT(construction_error(manifest_of({{"a", 1, {4}}, {"b", 1, {huge}}}, 0),
                                  std::numeric_limits<std::size_t>::max()),
               Catch::Contains("more than the limit"));
  }
}

TEST_CASE("ModelAssembler accepts a manifest of exactly the limit", "[codec][stream]") {
  ModelAssembler a(manifest_of({{"w", 1, {100}}, {"b", 1, {150}}}, 1000), 1000);
  CHECK_FALSE(a.complete());
}

}  // namespace sotto::codec

TEST_CASE("model stream: a manifest listing more tensors than the limit is refused before allocating") {
  sotto::v1::ModelManifest manifest;
  for (std::size_t i = 0; i <= sotto::codec::kMaxManifestTensors; ++i) {
    auto* spec = manifest.add_tensors();
    spec->set_name("t" + std::to_string(i));
    spec->set_dtype(sotto::v1::DTYPE_FLOAT32);
    spec->add_shape(0);
  }
  CHECK_THROWS_WITH(sotto::codec::ModelAssembler(manifest, 1u << 20), Catch::Contains("more than the limit"));
}

namespace sotto::codec {

TEST_CASE("manifest_mismatch names the tensor and both shapes, dtypes or names", "[codec][stream]") {
  model::Tensor w{"fc.weight", model::DType::kFloat32, {2, 3}, std::vector<std::byte>(24)};
  model::Tensor b{"fc.bias", model::DType::kFloat32, {2}, std::vector<std::byte>(8)};
  const model::ModelParameters layout({w, b});
  CHECK_FALSE(manifest_mismatch(make_manifest(layout), layout));

  model::Tensor w6 = w;
  w6.shape = {6};
  const auto shape = manifest_mismatch(make_manifest(model::ModelParameters({w6, b})), layout);
  REQUIRE(shape);
  CHECK(*shape == "tensor 0 ('fc.weight') has shape [6] in the update, [2, 3] in the model");

  model::Tensor b64{"fc.bias", model::DType::kFloat64, {1}, std::vector<std::byte>(8)};
  CHECK_THAT(*manifest_mismatch(make_manifest(model::ModelParameters({w, b64})), layout),
             Catch::Contains("'fc.bias'") && Catch::Contains("DTYPE_FLOAT64"));
  CHECK_THAT(*manifest_mismatch(make_manifest(model::ModelParameters({w})), layout),
             Catch::Contains("lists 1 tensors, the model has 2"));
}

}  // namespace sotto::codec
