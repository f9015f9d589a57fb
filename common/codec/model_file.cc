#include "common/codec/model_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "common/codec/model_stream.h"
#include "common/net/frame.h"
#include "common/util/error.h"

namespace sotto::codec {

namespace {

constexpr char kMagic[] = "SOTTOMF1";
constexpr std::size_t kMagicSize = sizeof(kMagic) - 1;
constexpr std::size_t kChunkBytes = 4u << 20;
constexpr std::size_t kMaxRecordBytes = 256u << 20;

void append_message(std::string& out, const google::protobuf::MessageLite& message) {
  const std::size_t size = message.ByteSizeLong();
  auto header = net::encode_frame_header(static_cast<std::uint32_t>(size));
  out.append(reinterpret_cast<const char*>(header.data()), header.size());
  const std::size_t at = out.size();
  out.resize(at + size);
  message.SerializeToArray(out.data() + at, static_cast<int>(size));
}

void write_all(int fd, const std::string& bytes, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path.string() + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

class Reader {
 public:
  Reader(std::ifstream& in, const std::filesystem::path& path) : in_(in), path_(path) {}

  template <typename Message>
  void next(Message& message) {
    std::uint8_t header[net::kFrameHeaderBytes];
    if (!in_.read(reinterpret_cast<char*>(header), sizeof header)) fail("truncated (missing a record header)");
    const std::uint32_t length = net::decode_frame_header(std::span<const std::uint8_t, 4>(header, 4));
    if (length > kMaxRecordBytes) fail("damaged (a record announces " + std::to_string(length) + " bytes)");
    buffer_.resize(length);
    if (!in_.read(buffer_.data(), length)) fail("truncated (a record is cut short)");
    if (!message.ParseFromArray(buffer_.data(), static_cast<int>(length))) fail("corrupt record");
  }

  [[noreturn]] void fail(const std::string& what) {
    throw Error("model file " + path_.string() + " is " + what +
                "; restore it from a backup or delete it to start over");
  }

 private:
  std::ifstream& in_;
  const std::filesystem::path& path_;
  std::string buffer_;
};

}  // namespace

void write_model_file(const std::filesystem::path& path, const ModelFile& file) {
  std::string bytes(kMagic, kMagicSize);
  v1::CheckpointHeader header;
  header.set_next_round_id(file.next_round_id);
  header.set_completed_rounds(file.completed_rounds);
  *header.mutable_model() = make_manifest(file.model);
  header.set_strategy(file.strategy);
  *header.mutable_strategy_state() = make_manifest(file.strategy_state);
  append_message(bytes, header);
  for (const auto* params : {&file.model, &file.strategy_state}) {
    for_each_chunk(*params, kChunkBytes, [&](v1::TensorChunk&& chunk) { append_message(bytes, chunk); });
  }

  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + tmp.string() + ": " + std::strerror(errno));
  try {
    write_all(fd, bytes, tmp);
    if (::fsync(fd) != 0) throw Error("cannot fsync " + tmp.string() + ": " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Error("cannot rename " + tmp.string() + " to " + path.string() + ": " + std::strerror(errno));
  }
  fsync_directory(path.parent_path());
}

ModelFile read_model_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open model file " + path.string() + ": " + std::strerror(errno));
  Reader reader(in, path);
  char magic[kMagicSize];
  if (!in.read(magic, kMagicSize) || std::memcmp(magic, kMagic, kMagicSize) != 0) {
    reader.fail("not a Sotto model file (bad magic)");
  }
  v1::CheckpointHeader header;
  reader.next(header);
  ModelFile file;
  file.next_round_id = header.next_round_id();
  file.completed_rounds = header.completed_rounds();
  file.strategy = header.strategy();
  // The tensors' bytes are in the file, so its size bounds them: a damaged manifest must not make us allocate more.
  std::error_code size_error;
  const auto file_size = std::filesystem::file_size(path, size_error);
  const std::size_t limit = size_error ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(file_size);
  auto read_stream = [&](const v1::ModelManifest& manifest) {
    if (manifest.total_bytes() > limit) {
      reader.fail("truncated or damaged (its manifest announces " + std::to_string(manifest.total_bytes()) +
                  " bytes of tensors, but the file has only " + std::to_string(limit) + ")");
    }
    try {
      ModelAssembler assembler(manifest, limit);
      while (!assembler.complete()) {
        v1::TensorChunk chunk;
        reader.next(chunk);
        if (auto err = assembler.accept(chunk)) reader.fail("inconsistent: " + *err);
      }
      return assembler.take();
    } catch (const Error& e) {
      if (std::string(e.what()).rfind("model file", 0) == 0) throw;
      reader.fail(std::string("inconsistent: ") + e.what());
    }
  };
  file.model = read_stream(header.model());
  file.strategy_state = read_stream(header.strategy_state());
  return file;
}

}  // namespace sotto::codec
