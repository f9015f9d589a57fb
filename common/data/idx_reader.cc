#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>

#include "common/data/image_dataset.h"
#include "common/util/error.h"

namespace sotto::data {

namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;
constexpr std::uint32_t kLabelsMagic = 0x00000801;
constexpr std::uint8_t kNumClasses = 10;
constexpr std::size_t kReadChunk = 1u << 20;
constexpr const char* kInstallHint =
    "install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (files go to /usr/share/datasets/fashion-mnist)";

std::string hex32(std::uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s += kDigits[(v >> shift) & 0xf];
  return s;
}

std::uint32_t big_endian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// A zlib stream over one file: gzread inflates gzip and passes anything else through unchanged.
class GzFile {
 public:
  explicit GzFile(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      throw Error("IDX file " + path.string() + " does not exist; " + kInstallHint + " or pass the right path");
    }
    if (std::filesystem::is_directory(path, ec)) {
      throw Error("IDX file " + path.string() + " is a directory, not a file");
    }
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) {
      throw Error("cannot open IDX file " + path.string() + ": " + std::strerror(errno));
    }
  }
  ~GzFile() { gzclose(file_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // True when the file is not gzip-compressed (zlib reads it as is).
  bool is_plain() const { return gzdirect(file_) != 0; }

  // Reads up to out.size() bytes; returns how many were read (fewer only at the end of the data).
  std::size_t read(std::span<std::uint8_t> out) {
    std::size_t done = 0;
    while (done < out.size()) {
      const auto want = static_cast<unsigned>(std::min(out.size() - done, kReadChunk));
      const int got = gzread(file_, out.data() + done, want);
      if (got < 0) fail_stream();
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    check_stream();
    return done;
  }

 private:
  void check_stream() {
    int code = Z_OK;
    gzerror(file_, &code);
    if (code != Z_OK) fail_stream();
  }

  [[noreturn]] void fail_stream() {
    int code = Z_OK;
    std::string message = gzerror(file_, &code);
    const std::string prefix = path_.string() + ": ";  // zlib prefixes its messages with the path
    if (message.starts_with(prefix)) message.erase(0, prefix.size());
    throw Error("IDX file " + path_.string() + " is a corrupt or truncated gzip stream (zlib: " + message +
                "); replace it, e.g. `apt-get install --reinstall dataset-fashion-mnist` for Fashion-MNIST");
  }

  std::filesystem::path path_;
  gzFile file_ = nullptr;
};

struct IdxHeader {
  std::uint32_t count = 0;
  std::uint32_t rows = 1;
  std::uint32_t cols = 1;
};

// Reads and checks the magic and dimensions; `dims` is 3 for images, 1 for labels.
IdxHeader read_header(GzFile& in, const std::filesystem::path& path, std::uint32_t magic, int dims) {
  const char* kind = dims == 3 ? "image" : "label";
  std::array<std::uint8_t, 16> raw{};
  const std::size_t header_bytes = 4 + 4 * static_cast<std::size_t>(dims);
  const std::size_t got = in.read(std::span(raw.data(), header_bytes));
  if (got == 0) {
    throw Error("IDX file " + path.string() + " is empty; expected an IDX " + kind + " file (magic " + hex32(magic) +
                ")");
  }
  const std::uint32_t found = got >= 4 ? big_endian32(raw.data()) : 0;
  if (got < 4 || found != magic) {
    if (found == kImagesMagic || found == kLabelsMagic) {
      throw Error("IDX file " + path.string() + " has magic " + hex32(found) + " but an IDX " + kind + " file needs " +
                  hex32(magic) + "; are the image and label files swapped?");
    }
    const std::string what = in.is_plain() ? "is neither gzip-compressed nor an IDX file"
                                           : "is gzip-compressed but does not hold an IDX file";
    throw Error("IDX file " + path.string() + " " + what + " (first bytes read as magic " + hex32(found) +
                ", expected " + hex32(magic) + " for an IDX " + kind + " file)");
  }
  if (got < header_bytes) {
    throw Error("IDX file " + path.string() + " is truncated: its header has " + std::to_string(got) + " of " +
                std::to_string(header_bytes) + " bytes");
  }
  IdxHeader h;
  h.count = big_endian32(raw.data() + 4);
  if (dims == 3) {
    h.rows = big_endian32(raw.data() + 8);
    h.cols = big_endian32(raw.data() + 12);
    if (h.rows == 0 || h.cols == 0) {
      throw Error("IDX file " + path.string() + " declares images of " + std::to_string(h.rows) + "x" +
                  std::to_string(h.cols) + " pixels; both must be positive");
    }
  }
  return h;
}

// Reads exactly `bytes` payload bytes, growing the buffer as data arrives (a corrupt header cannot make us
// allocate gigabytes up front), then checks that nothing follows.
std::vector<std::uint8_t> read_payload(GzFile& in, const std::filesystem::path& path, std::uint64_t bytes,
                                       const std::string& what) {
  std::vector<std::uint8_t> out;
  while (out.size() < bytes) {
    const std::size_t at = out.size();
    const auto step = static_cast<std::size_t>(std::min<std::uint64_t>(bytes - at, 16 * kReadChunk));
    out.resize(at + step);
    const std::size_t got = in.read(std::span(out.data() + at, step));
    if (got < step) {
      throw Error("IDX file " + path.string() + " is truncated: its header promises " + what + " (" +
                  std::to_string(bytes) + " bytes of data) but only " + std::to_string(at + got) +
                  " bytes follow; download or reinstall it");
    }
  }
  std::uint8_t extra = 0;
  if (in.read(std::span(&extra, 1)) != 0) {
    throw Error("IDX file " + path.string() + " has data after the " + what + " its header declares; it is corrupt " +
                "or the header is wrong");
  }
  return out;
}

}  // namespace

ImageDataset read_idx(const std::filesystem::path& images, const std::filesystem::path& labels) {
  ImageDataset ds;
  {
    GzFile in(images);
    const IdxHeader h = read_header(in, images, kImagesMagic, 3);
    ds.rows = h.rows;
    ds.cols = h.cols;
    const std::uint64_t image_bytes = std::uint64_t{h.rows} * h.cols;
    if (h.count != 0 && image_bytes > std::numeric_limits<std::uint64_t>::max() / h.count) {
      throw Error("IDX file " + images.string() + " declares " + std::to_string(h.count) + " images of " +
                  std::to_string(h.rows) + "x" + std::to_string(h.cols) + ", too large to be real; it is corrupt");
    }
    const std::uint64_t bytes = image_bytes * h.count;
    ds.pixels = read_payload(in, images, bytes,
                             std::to_string(h.count) + " images of " + std::to_string(h.rows) + "x" +
                                 std::to_string(h.cols));
  }
  const std::uint64_t num_images = ds.pixels.size() / ds.image_bytes();
  {
    GzFile in(labels);
    const IdxHeader h = read_header(in, labels, kLabelsMagic, 1);
    if (h.count != num_images) {
      throw Error("IDX label file " + labels.string() + " holds " + std::to_string(h.count) +
                  " labels but image file " + images.string() + " holds " + std::to_string(num_images) +
                  " images; use the label file that belongs to these images");
    }
    ds.labels = read_payload(in, labels, h.count, std::to_string(h.count) + " labels");
  }
  const auto bad = std::find_if(ds.labels.begin(), ds.labels.end(), [](std::uint8_t l) { return l >= kNumClasses; });
  if (bad != ds.labels.end()) {
    throw Error("IDX label file " + labels.string() + " has label " + std::to_string(*bad) + " at index " +
                std::to_string(bad - ds.labels.begin()) + "; labels must be 0..9 (is this a 10-class data set?)");
  }
  return ds;
}

ImageDataset load_fashion_mnist(const std::filesystem::path& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  // Debian ships the files gzipped; accept an uncompressed copy when only that exists.
  auto locate = [&](const std::string& stem) {
    const std::filesystem::path gz = dir / (stem + ".gz");
    const std::filesystem::path plain = dir / stem;
    std::error_code ec;
    if (!std::filesystem::exists(gz, ec) && std::filesystem::exists(plain, ec)) return plain;
    return gz;
  };
  return read_idx(locate(prefix + "-images-idx3-ubyte"), locate(prefix + "-labels-idx1-ubyte"));
}

ImageDataset subset(const ImageDataset& data, std::span<const std::uint32_t> indices) {
  ImageDataset out;
  out.rows = data.rows;
  out.cols = data.cols;
  out.pixels.reserve(indices.size() * data.image_bytes());
  out.labels.reserve(indices.size());
  for (std::uint32_t i : indices) {
    if (i >= data.size()) {
      throw Error("example " + std::to_string(i) + " is not in the data set of " + std::to_string(data.size()));
    }
    const auto image = data.image(i);
    out.pixels.insert(out.pixels.end(), image.begin(), image.end());
    out.labels.push_back(data.labels[i]);
  }
  return out;
}

}  // namespace sotto::data
