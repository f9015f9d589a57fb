#include "common/codec/model_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>

#include <zlib.h>

#include "common/codec/model_stream.h"
#include "common/net/frame.h"
#include "common/util/error.h"

namespace sotto::codec {

namespace {

// The magic is "SOTTOMF" and the format version as one digit. Format 1: records are a 4-byte length and a
// protobuf message. Format 2 adds each record's CRC-32 (zlib's) after its length, checked on every read.
constexpr char kMagicStem[] = "SOTTOMF";
constexpr std::size_t kMagicSize = sizeof(kMagicStem);  // the stem and the digit
constexpr std::size_t kCrcBytes = 4;
constexpr std::size_t kChunkBytes = 4u << 20;
constexpr std::size_t kMaxRecordBytes = 256u << 20;

std::uint32_t crc_of(const char* data, std::size_t size) {
  return static_cast<std::uint32_t>(
      crc32_z(crc32_z(0, nullptr, 0), reinterpret_cast<const Bytef*>(data), static_cast<z_size_t>(size)));
}

void append_u32(std::string& out, std::uint32_t value) {
  const auto bytes = net::encode_frame_header(value);  // big-endian
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void append_record(std::string& out, const google::protobuf::MessageLite& message) {
  const std::size_t size = message.ByteSizeLong();
  append_u32(out, static_cast<std::uint32_t>(size));
  const std::size_t crc_at = out.size();
  out.resize(crc_at + kCrcBytes + size);
  char* payload = out.data() + crc_at + kCrcBytes;
  message.SerializeToArray(payload, static_cast<int>(size));
  const auto crc = net::encode_frame_header(crc_of(payload, size));
  std::memcpy(out.data() + crc_at, crc.data(), kCrcBytes);
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
  // `size`: the bytes the stream holds, which bound every record (a damaged length must not make us allocate more).
  Reader(std::istream& in, const std::string& name, std::size_t size) : in_(in), name_(name), size_(size) {}

  // Reads the magic and returns the format version it names.
  std::uint32_t read_magic() {
    char magic[kMagicSize];
    if (!in_.read(magic, kMagicSize) || std::memcmp(magic, kMagicStem, kMagicSize - 1) != 0 ||
        magic[kMagicSize - 1] < '1' || magic[kMagicSize - 1] > '9') {
      fail("is not a Sotto model file (bad magic)");
    }
    version_ = static_cast<std::uint32_t>(magic[kMagicSize - 1] - '0');
    if (version_ > kModelFileFormat) {
      throw Error("model file " + name_ + " has format version " + std::to_string(version_) +
                  ", newer than this build reads (up to " + std::to_string(kModelFileFormat) +
                  "): read it with the newer Sotto that wrote it, or point state.dir elsewhere to start over");
    }
    return version_;
  }

  template <typename Message>
  void next(Message& message, const char* what) {
    ++records_;
    const std::uint32_t length = read_u32(what);
    if (length > kMaxRecordBytes) {
      fail("is damaged: record " + std::to_string(records_) + " (" + what + ") announces " +
           std::to_string(length) + " bytes");
    }
    const std::optional<std::uint32_t> crc = version_ >= 2 ? std::optional(read_u32(what)) : std::nullopt;
    if (length > size_) fail(std::string("is truncated: ") + what + " is cut short");
    buffer_.resize(length);
    if (!in_.read(buffer_.data(), length)) fail(std::string("is truncated: ") + what + " is cut short");
    if (crc && *crc != crc_of(buffer_.data(), length)) {
      fail("is damaged: record " + std::to_string(records_) + " (" + what + ") fails its checksum");
    }
    if (!message.ParseFromArray(buffer_.data(), static_cast<int>(length))) {
      fail("has a corrupt record " + std::to_string(records_) + " (" + what + ")");
    }
  }

  [[noreturn]] void fail(const std::string& what) {
    throw Error("model file " + name_ + " " + what + "; restore it from a backup or delete it to start over");
  }

 private:
  std::uint32_t read_u32(const char* what) {
    std::uint8_t bytes[4];
    if (!in_.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
      fail(std::string("is truncated: ") + what + " is missing");
    }
    return net::decode_frame_header(std::span<const std::uint8_t, 4>(bytes, 4));
  }

  std::istream& in_;
  const std::string& name_;
  std::size_t size_;
  std::string buffer_;
  std::uint32_t version_ = 0;
  std::size_t records_ = 0;
};

}  // namespace

namespace {

const model::ModelParameters kNoTensors;

// Appends the file's bytes to `buffer`, handing it to `flush` whenever it holds kChunkBytes or more (a flush that
// does not empty it collects the whole file).
void encode_into(const ModelFileRef& file, std::string& buffer, const std::function<void(std::string&)>& flush) {
  if (file.model == nullptr) throw Error("write_model_file: no model to write");
  const model::ModelParameters& state = file.strategy_state ? *file.strategy_state : kNoTensors;
  buffer.append(kMagicStem, kMagicSize - 1);
  buffer += static_cast<char>('0' + kModelFileFormat);
  v1::CheckpointHeader header;
  header.set_next_round_id(file.next_round_id);
  header.set_completed_rounds(file.completed_rounds);
  *header.mutable_model() = make_manifest(*file.model);
  header.set_strategy(std::string(file.strategy));
  header.set_round_record(std::string(file.round_record));
  if (file.offences) {
    for (const auto& [client, count] : *file.offences) (*header.mutable_offences())[client] = count;
  }
  for (double r : file.privacy_rdp) header.add_privacy_rdp(r);
  header.set_clip_norm(file.clip_norm);
  *header.mutable_strategy_state() = make_manifest(state);
  append_record(buffer, header);
  for (const auto* params : {file.model, &state}) {
    for_each_chunk(*params, kChunkBytes, [&](v1::TensorChunk&& chunk) {
      append_record(buffer, chunk);
      if (buffer.size() >= kChunkBytes) flush(buffer);
    });
  }
}

// Writes `file` to a new file at `path`, fsynced; removes it again on failure.
void write_synced(const std::filesystem::path& path, const ModelFileRef& file) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + path.string() + ": " + std::strerror(errno));
  try {
    std::string buffer;
    const auto flush = [&](std::string& bytes) {
      write_all(fd, bytes, path);
      bytes.clear();
    };
    encode_into(file, buffer, flush);
    flush(buffer);
    if (::fsync(fd) != 0) throw Error("cannot fsync " + path.string() + ": " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    throw;
  }
  ::close(fd);
}

}  // namespace

ModelFileRef ModelFile::ref() const {
  return {next_round_id, completed_rounds, &model,       strategy,  &strategy_state,
          round_record,  &offences,        privacy_rdp, clip_norm};
}

std::string encode_model_file(const ModelFile& file) {
  std::string bytes;
  encode_into(file.ref(), bytes, [](std::string&) {});
  return bytes;
}

void write_model_file(const std::filesystem::path& path, const ModelFile& file) {
  write_model_file(path, file.ref());
}

void write_model_file(const std::filesystem::path& path, const ModelFileRef& file) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  write_synced(tmp, file);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Error("cannot rename " + tmp.string() + " to " + path.string() + ": " + std::strerror(errno));
  }
  fsync_directory(path.parent_path());
}

ModelFile read_model_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open model file " + path.string() + ": " + std::strerror(errno));
  std::error_code size_error;
  const auto file_size = std::filesystem::file_size(path, size_error);
  const std::size_t size = size_error ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(file_size);
  return parse_model_file(in, size, path.string());
}

ModelFile parse_model_file(std::istream& in, std::size_t size, const std::string& name) {
  Reader reader(in, name, size);
  const std::uint32_t version = reader.read_magic();
  v1::CheckpointHeader header;
  reader.next(header, "the header");
  ModelFile file;
  file.format_version = version;
  file.next_round_id = header.next_round_id();
  file.completed_rounds = header.completed_rounds();
  file.strategy = header.strategy();
  file.round_record = header.round_record();
  file.offences.insert(header.offences().begin(), header.offences().end());
  file.privacy_rdp.assign(header.privacy_rdp().begin(), header.privacy_rdp().end());
  file.clip_norm = header.clip_norm();
  if (!(file.clip_norm >= 0) || !std::isfinite(file.clip_norm)) {
    reader.fail("holds a clip norm that is negative or not finite (" + std::to_string(file.clip_norm) + ")");
  }
  // The tensors' bytes are in the file, so its size bounds them: a damaged manifest must not make us allocate more.
  const std::size_t limit = size;
  auto read_stream = [&](const v1::ModelManifest& manifest) {
    if (manifest.total_bytes() > limit) {
      reader.fail("is truncated or damaged (its manifest announces " + std::to_string(manifest.total_bytes()) +
                  " bytes of tensors, but the file has only " + std::to_string(limit) + ")");
    }
    try {
      ModelAssembler assembler(manifest, limit);
      while (!assembler.complete()) {
        v1::TensorChunk chunk;
        reader.next(chunk, "a tensor chunk");
        if (auto err = assembler.accept(chunk)) reader.fail("is inconsistent: " + *err);
      }
      return assembler.take();
    } catch (const Error& e) {
      if (std::string(e.what()).rfind("model file", 0) == 0) throw;
      reader.fail(std::string("is inconsistent: ") + e.what());
    }
  };
  file.model = read_stream(header.model());
  file.strategy_state = read_stream(header.strategy_state());
  return file;
}

}  // namespace sotto::codec
