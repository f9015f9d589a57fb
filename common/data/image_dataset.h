// ImageDataset: labelled greyscale images held as raw bytes, and the reader for Fashion-MNIST's IDX files.
//
// The IDX format (LeCun et al.) is a big-endian header — magic (0x00000803 images, 0x00000801 labels), counts,
// rows, cols — followed by unsigned bytes. Debian's dataset-fashion-mnist ships the four files gzipped in
// /usr/share/datasets/fashion-mnist; the reader inflates them with zlib. Every failure names the file and what is
// wrong with it (missing, not gzip, wrong magic, truncated, image and label counts that disagree, a label > 9).
// No LibTorch here: trainers turn selected examples into tensors themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace sotto::data {

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct ImageDataset {
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<std::uint8_t> pixels;  // size() * rows * cols bytes, image after image
  std::vector<std::uint8_t> labels;  // one per image, 0..9

  std::size_t size() const { return labels.size(); }
  std::size_t image_bytes() const { return static_cast<std::size_t>(rows) * cols; }
  std::span<const std::uint8_t> image(std::size_t i) const { return {pixels.data() + i * image_bytes(), image_bytes()}; }
};

enum class Split { kTrain, kTest };

// Reads an IDX image file and its IDX label file (gzipped or not). Throws sotto::Error on any problem.
ImageDataset read_idx(const std::filesystem::path& images, const std::filesystem::path& labels);
// Reads train-* or t10k-* from `dir`.
ImageDataset load_fashion_mnist(const std::filesystem::path& dir, Split split);

// A copy of the examples `indices` names, in that order (a device's held-out examples). Throws sotto::Error naming
// an index beyond the data set.
ImageDataset subset(const ImageDataset& data, std::span<const std::uint32_t> indices);

}  // namespace sotto::data
