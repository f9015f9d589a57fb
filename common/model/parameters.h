// ModelParameters: a model's state as framework-neutral named tensors (name, dtype, shape, bytes).
//
// Aggregation, checkpoints, the wire codec and (later) secure aggregation and DP work on this type and never see
// LibTorch; only common/ml bridges it to a torch::nn::Module. Invariants: names are unique; every tensor's byte
// count equals product(shape) * dtype_size(dtype); bytes are little-endian and contiguous, row-major.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/model/dtype.h"

namespace sotto::model {

struct Tensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;

  std::size_t num_elements() const;
  // Views the bytes as T; throws sotto::Error when T does not match the dtype.
  template <typename T>
  std::span<const T> as() const;
  template <typename T>
  std::span<T> as_mutable();
};

// Product of the dimensions; throws sotto::Error on a negative dimension or overflow.
std::size_t element_count(const std::vector<std::int64_t>& shape);
std::string shape_string(const std::vector<std::int64_t>& shape);

class ModelParameters {
 public:
  ModelParameters() = default;
  explicit ModelParameters(std::vector<Tensor> tensors);  // validates the invariants

  const std::vector<Tensor>& tensors() const { return tensors_; }
  std::vector<Tensor>& mutable_tensors() { return tensors_; }
  std::size_t size() const { return tensors_.size(); }
  bool empty() const { return tensors_.empty(); }
  std::size_t total_bytes() const;
  std::size_t total_elements() const;

  const Tensor* find(const std::string& name) const;
  // Adds a tensor; throws sotto::Error on a duplicate name or a byte count that does not match its shape.
  void add(Tensor tensor);

  // Empty when `other` has exactly the same tensor names in the same order with the same dtypes and shapes;
  // otherwise a message naming the first difference ("tensor 'fc1.weight': shape [10, 5] expected [10, 4]").
  std::optional<std::string> layout_mismatch(const ModelParameters& expected) const;
  // Empty when every floating-point element is finite; otherwise names the first tensor with NaN or Inf.
  std::optional<std::string> first_non_finite() const;

  bool operator==(const ModelParameters& other) const;

 private:
  std::vector<Tensor> tensors_;
};

// Elementwise a - b (same layout required); integer tensors subtract exactly, floating ones in their own type.
ModelParameters subtract(const ModelParameters& a, const ModelParameters& b);
// Elementwise a - b of one tensor pair (same dtype and shape required; the result takes a's name).
Tensor subtract(const Tensor& a, const Tensor& b);
// Elementwise a + b (same layout required).
ModelParameters add(const ModelParameters& a, const ModelParameters& b);

}  // namespace sotto::model
