// Tests for the IDX reader: the real Fashion-MNIST test split, and every kind of bad file naming itself.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/data/image_dataset.h"
#include "common/util/error.h"

namespace fs = std::filesystem;
using sotto::data::ImageDataset;
using sotto::data::read_idx;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("sotto_idx_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// An IDX image file of `count` images of rows x cols, pixel value = (image + pixel) % 256.
std::vector<std::uint8_t> idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  std::vector<std::uint8_t> out;
  put_be32(out, 0x00000803);
  put_be32(out, count);
  put_be32(out, rows);
  put_be32(out, cols);
  for (std::uint32_t i = 0; i < count; ++i) {
    for (std::uint32_t p = 0; p < rows * cols; ++p) out.push_back(static_cast<std::uint8_t>(i + p));
  }
  return out;
}

std::vector<std::uint8_t> idx_labels(const std::vector<std::uint8_t>& labels) {
  std::vector<std::uint8_t> out;
  put_be32(out, 0x00000801);
  put_be32(out, static_cast<std::uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

void write_plain(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_gzip(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// The message of the sotto::Error that read_idx throws, or "" when it does not throw.
std::string read_error(const fs::path& images, const fs::path& labels) {
  try {
    read_idx(images, labels);
  } catch (const sotto::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("read_idx reads the real Fashion-MNIST test split", "[data][idx]") {
  const ImageDataset ds = sotto::data::load_fashion_mnist(sotto::data::kDefaultFashionMnistDir,
                                                          sotto::data::Split::kTest);
  REQUIRE(ds.size() == 10000);
  REQUIRE(ds.rows == 28);
  REQUIRE(ds.cols == 28);
  REQUIRE(ds.image_bytes() == 784);
  REQUIRE(ds.pixels.size() == 10000u * 784u);
  std::array<int, 10> histogram{};
  for (std::uint8_t label : ds.labels) {
    REQUIRE(label <= 9);
    ++histogram[label];
  }
  for (int count : histogram) CHECK(count == 1000);
  // Known facts about the published t10k split: the first label is 9 (ankle boot), the second 2 (pullover).
  CHECK(ds.labels[0] == 9);
  CHECK(ds.labels[1] == 2);
  // Images are real pictures, not blank: the first has both dark background and bright pixels.
  const auto first = ds.image(0);
  CHECK(first[0] == 0);
  CHECK(*std::max_element(first.begin(), first.end()) > 200);
}

TEST_CASE("read_idx reads plain and gzipped IDX files alike", "[data][idx]") {
  TempDir dir;
  const auto images = idx_images(3, 2, 4);
  const auto labels = idx_labels({7, 0, 9});
  write_plain(dir / "images", images);
  write_plain(dir / "labels", labels);
  write_gzip(dir / "images.gz", images);
  write_gzip(dir / "labels.gz", labels);

  for (const auto& [img, lbl] : {std::pair{"images", "labels"}, std::pair{"images.gz", "labels.gz"}}) {
    const ImageDataset ds = read_idx(dir / img, dir / lbl);
    REQUIRE(ds.size() == 3);
    REQUIRE(ds.rows == 2);
    REQUIRE(ds.cols == 4);
    REQUIRE(ds.labels == std::vector<std::uint8_t>{7, 0, 9});
    REQUIRE(ds.pixels == std::vector<std::uint8_t>(images.begin() + 16, images.end()));
    CHECK(ds.image(2)[1] == 3);
  }
}

TEST_CASE("read_idx names a missing file and says how to install the data", "[data][idx]") {
  TempDir dir;
  write_gzip(dir / "labels.gz", idx_labels({1}));
  const fs::path missing = dir / "no-such-images.gz";
  const std::string message = read_error(missing, dir / "labels.gz");
  CHECK_THAT(message, Catch::Contains(missing.string()));
  CHECK_THAT(message, Catch::Contains("does not exist"));
  CHECK_THAT(message, Catch::Contains("apt-get install dataset-fashion-mnist"));

  const std::string from_dir = [&] {
    try {
      sotto::data::load_fashion_mnist(dir / "empty", sotto::data::Split::kTrain);
    } catch (const sotto::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  CHECK_THAT(from_dir, Catch::Contains("train-images-idx3-ubyte.gz"));
  CHECK_THAT(from_dir, Catch::Contains("apt-get install dataset-fashion-mnist"));
}

TEST_CASE("read_idx rejects a file that is neither gzip nor IDX", "[data][idx]") {
  TempDir dir;
  const std::string text = "this is a text file, not an IDX file\n";
  write_plain(dir / "notes.txt", std::vector<std::uint8_t>(text.begin(), text.end()));
  write_gzip(dir / "labels.gz", idx_labels({1}));
  const std::string message = read_error(dir / "notes.txt", dir / "labels.gz");
  CHECK_THAT(message, Catch::Contains((dir / "notes.txt").string()));
  CHECK_THAT(message, Catch::Contains("neither gzip-compressed nor an IDX file"));

  write_plain(dir / "empty", {});
  CHECK_THAT(read_error(dir / "empty", dir / "labels.gz"), Catch::Contains((dir / "empty").string()) &&
                                                                Catch::Contains("is empty"));
}

TEST_CASE("read_idx rejects the wrong magic, e.g. swapped image and label files", "[data][idx]") {
  TempDir dir;
  write_gzip(dir / "images.gz", idx_images(1, 2, 2));
  write_gzip(dir / "labels.gz", idx_labels({1}));
  const std::string message = read_error(dir / "labels.gz", dir / "images.gz");
  CHECK_THAT(message, Catch::Contains((dir / "labels.gz").string()));
  CHECK_THAT(message, Catch::Contains("0x00000801"));
  CHECK_THAT(message, Catch::Contains("swapped"));

  // gzip around something that is not IDX at all.
  write_gzip(dir / "junk.gz", {'j', 'u', 'n', 'k', 'j', 'u', 'n', 'k'});
  CHECK_THAT(read_error(dir / "junk.gz", dir / "labels.gz"),
             Catch::Contains((dir / "junk.gz").string()) && Catch::Contains("does not hold an IDX file"));
}

TEST_CASE("read_idx rejects truncated files", "[data][idx]") {
  TempDir dir;
  write_gzip(dir / "labels.gz", idx_labels({1, 2, 3, 4, 5}));

  SECTION("an IDX file shorter than its header says") {
    auto images = idx_images(5, 4, 4);
    images.resize(images.size() - 20);
    write_plain(dir / "images", images);
    const std::string message = read_error(dir / "images", dir / "labels.gz");
    CHECK_THAT(message, Catch::Contains((dir / "images").string()));
    CHECK_THAT(message, Catch::Contains("truncated"));
  }
  SECTION("an IDX header cut short") {
    auto images = idx_images(5, 4, 4);
    images.resize(10);
    write_plain(dir / "images", images);
    CHECK_THAT(read_error(dir / "images", dir / "labels.gz"),
               Catch::Contains((dir / "images").string()) && Catch::Contains("truncated"));
  }
  SECTION("a gzip stream cut short") {
    write_gzip(dir / "images.gz", idx_images(5, 16, 16));
    const auto size = fs::file_size(dir / "images.gz");
    fs::resize_file(dir / "images.gz", size / 2);
    const std::string message = read_error(dir / "images.gz", dir / "labels.gz");
    CHECK_THAT(message, Catch::Contains((dir / "images.gz").string()));
    CHECK_THAT(message, Catch::Contains("truncated"));
  }
  SECTION("a label file shorter than its header says") {
    write_gzip(dir / "images.gz", idx_images(5, 4, 4));
    auto labels = idx_labels({1, 2, 3, 4, 5});
    labels.pop_back();
    write_plain(dir / "short-labels", labels);
    CHECK_THAT(read_error(dir / "images.gz", dir / "short-labels"),
               Catch::Contains((dir / "short-labels").string()) && Catch::Contains("truncated"));
  }
}

TEST_CASE("read_idx rejects data after the declared payload", "[data][idx]") {
  TempDir dir;
  auto images = idx_images(2, 3, 3);
  images.push_back(42);
  write_plain(dir / "images", images);
  write_plain(dir / "labels", idx_labels({1, 2}));
  CHECK_THAT(read_error(dir / "images", dir / "labels"),
             Catch::Contains((dir / "images").string()) && Catch::Contains("data after"));
}

TEST_CASE("read_idx rejects image and label counts that disagree", "[data][idx]") {
  TempDir dir;
  write_gzip(dir / "images.gz", idx_images(3, 2, 2));
  write_gzip(dir / "labels.gz", idx_labels({1, 2}));
  const std::string message = read_error(dir / "images.gz", dir / "labels.gz");
  CHECK_THAT(message, Catch::Contains((dir / "labels.gz").string()));
  CHECK_THAT(message, Catch::Contains((dir / "images.gz").string()));
  CHECK_THAT(message, Catch::Contains("2 labels"));
  CHECK_THAT(message, Catch::Contains("3 images"));
}

TEST_CASE("read_idx rejects a label above 9", "[data][idx]") {
  TempDir dir;
  write_gzip(dir / "images.gz", idx_images(3, 2, 2));
  write_gzip(dir / "labels.gz", idx_labels({1, 12, 2}));
  const std::string message = read_error(dir / "images.gz", dir / "labels.gz");
  CHECK_THAT(message, Catch::Contains((dir / "labels.gz").string()));
  CHECK_THAT(message, Catch::Contains("label 12 at index 1"));
}
