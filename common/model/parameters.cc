#include "common/model/parameters.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_set>

#include "common/util/error.h"

namespace sotto::model {

namespace {

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kFloat64;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::kUInt8;
}
template <>
constexpr DType dtype_of<std::int8_t>() {
  return DType::kInt8;
}

void check_view(const Tensor& t, DType wanted) {
  if (t.dtype != wanted) {
    throw Error("tensor '" + t.name + "' holds " + std::string(dtype_name(t.dtype)) + ", not " +
                std::string(dtype_name(wanted)));
  }
}

void check_bytes(const Tensor& t) {
  const std::size_t elements = element_count(t.shape);
  if (elements > std::numeric_limits<std::size_t>::max() / dtype_size(t.dtype)) {
    throw Error("tensor '" + t.name + "': shape " + shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) +
                " overflows the byte count");
  }
  const std::size_t expected = elements * dtype_size(t.dtype);
  if (t.data.size() != expected) {
    throw Error("tensor '" + t.name + "' has " + std::to_string(t.data.size()) + " bytes but shape " +
                shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) + " needs " +
                std::to_string(expected));
  }
}

// Integers wrap modulo 2^bits (computed unsigned: signed overflow would be undefined behaviour); floating-point
// values are computed in their own type.
template <typename T, typename Op>
T apply(Op op, T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(op(static_cast<U>(x), static_cast<U>(y))));
  } else {
    return static_cast<T>(op(x, y));
  }
}

// Whether any IEEE value in `bytes` (little-endian words of type Word) has every exponent bit set, i.e. is NaN or
// Inf: a branch-free pass the compiler vectorises (std::isfinite per element does not), run before looking for
// which one it is.
template <typename Word>
bool has_all_ones_exponent(const std::vector<std::byte>& bytes, Word exponent_mask) {
  const std::size_t n = bytes.size() / sizeof(Word);
  const std::byte* p = bytes.data();
  Word any = 0;
  for (std::size_t i = 0; i < n; ++i) {
    Word w;
    std::memcpy(&w, p + i * sizeof(Word), sizeof(Word));
    any |= static_cast<Word>((w & exponent_mask) == exponent_mask);
  }
  return any != 0;
}

// NaN or Inf of an IEEE half (exponent mask 0x7C00) or bfloat16 (0x7F80), read little-endian; nullptr if finite.
const char* non_finite_16(const std::byte* p, std::uint16_t exponent_mask) {
  const auto bits =
      static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
  if ((bits & exponent_mask) != exponent_mask) return nullptr;
  const auto mantissa_mask = static_cast<std::uint16_t>(~exponent_mask & 0x7FFFu);
  return (bits & mantissa_mask) ? "NaN" : "Inf";
}

template <typename T, typename Op>
void elementwise(const Tensor& a, const Tensor& b, Tensor& out, Op op) {
  auto x = a.as<T>();
  auto y = b.as<T>();
  auto z = out.as_mutable<T>();
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = apply<T>(op, x[i], y[i]);
}

template <typename Op>
Tensor combine_tensors(const Tensor& x, const Tensor& y, Op op, const char* what) {
  if (x.dtype != y.dtype || x.shape != y.shape || x.data.size() != y.data.size()) {
    throw Error(std::string("cannot ") + what + " tensor '" + x.name + "' (" + std::string(dtype_name(x.dtype)) +
                " " + shape_string(x.shape) + ") and tensor '" + y.name + "' (" + std::string(dtype_name(y.dtype)) +
                " " + shape_string(y.shape) + "): dtypes and shapes must match");
  }
  Tensor z{x.name, x.dtype, x.shape, std::vector<std::byte>(x.data.size())};
  switch (x.dtype) {
    case DType::kFloat32: elementwise<float>(x, y, z, op); break;
    case DType::kFloat64: elementwise<double>(x, y, z, op); break;
    case DType::kInt64: elementwise<std::int64_t>(x, y, z, op); break;
    case DType::kInt32: elementwise<std::int32_t>(x, y, z, op); break;
    case DType::kUInt8: elementwise<std::uint8_t>(x, y, z, op); break;
    case DType::kInt8: elementwise<std::int8_t>(x, y, z, op); break;
    default:
      throw Error(std::string("cannot ") + what + " tensor '" + x.name + "' of dtype " +
                  std::string(dtype_name(x.dtype)) + ": unsupported for arithmetic");
  }
  return z;
}

template <typename Op>
ModelParameters combine(const ModelParameters& a, const ModelParameters& b, Op op, const char* what) {
  if (auto mismatch = a.layout_mismatch(b)) throw Error(std::string("cannot ") + what + ": " + *mismatch);
  std::vector<Tensor> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) out.push_back(combine_tensors(a.tensors()[i], b.tensors()[i], op, what));
  return ModelParameters(std::move(out));
}

}  // namespace

std::size_t element_count(const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + shape_string(shape));
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(d)) {
      throw Error("shape " + shape_string(shape) + " overflows the element count");
    }
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::size_t Tensor::num_elements() const {
  return element_count(shape);
}

template <typename T>
std::span<const T> Tensor::as() const {
  check_view(*this, dtype_of<T>());
  return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
}

template <typename T>
std::span<T> Tensor::as_mutable() {
  check_view(*this, dtype_of<T>());
  return {reinterpret_cast<T*>(data.data()), data.size() / sizeof(T)};
}

#define SOTTO_INSTANTIATE_VIEWS(T)                   \
  template std::span<const T> Tensor::as<T>() const; \
  template std::span<T> Tensor::as_mutable<T>();
SOTTO_INSTANTIATE_VIEWS(float)
SOTTO_INSTANTIATE_VIEWS(double)
SOTTO_INSTANTIATE_VIEWS(std::int64_t)
SOTTO_INSTANTIATE_VIEWS(std::int32_t)
SOTTO_INSTANTIATE_VIEWS(std::uint8_t)
SOTTO_INSTANTIATE_VIEWS(std::int8_t)
#undef SOTTO_INSTANTIATE_VIEWS

ModelParameters::ModelParameters(std::vector<Tensor> tensors) {
  tensors_.reserve(tensors.size());
  for (auto& t : tensors) add(std::move(t));
}

void ModelParameters::add(Tensor tensor) {
  if (tensor.name.empty()) throw Error("a tensor has an empty name");
  if (find(tensor.name)) throw Error("duplicate tensor name '" + tensor.name + "'");
  check_bytes(tensor);
  tensors_.push_back(std::move(tensor));
}

std::size_t ModelParameters::total_bytes() const {
  std::size_t n = 0;
  for (const auto& t : tensors_) n += t.data.size();
  return n;
}

std::size_t ModelParameters::total_elements() const {
  std::size_t n = 0;
  for (const auto& t : tensors_) n += t.num_elements();
  return n;
}

const Tensor* ModelParameters::find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::optional<std::string> ModelParameters::layout_mismatch(const ModelParameters& expected) const {
  std::unordered_set<std::string> have;
  for (const auto& t : tensors_) have.insert(t.name);
  for (const auto& e : expected.tensors_) {
    if (!have.count(e.name)) return "missing tensor '" + e.name + "'";
  }
  std::unordered_set<std::string> want;
  for (const auto& e : expected.tensors_) want.insert(e.name);
  for (const auto& t : tensors_) {
    if (!want.count(t.name)) return "unexpected tensor '" + t.name + "'";
  }
  if (tensors_.size() != expected.tensors_.size()) {
    // Only reachable when names repeat (e.g. through mutable_tensors()); the loop below indexes both.
    return std::to_string(tensors_.size()) + " tensors, expected " + std::to_string(expected.tensors_.size());
  }
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    const Tensor& e = expected.tensors_[i];
    if (t.name != e.name)
      return "tensor '" + t.name + "' at position " + std::to_string(i) + ", expected '" + e.name + "'";
    if (t.dtype != e.dtype) {
      return "tensor '" + t.name + "': dtype " + std::string(dtype_name(t.dtype)) + ", expected " +
             std::string(dtype_name(e.dtype));
    }
    if (t.shape != e.shape) {
      return "tensor '" + t.name + "': shape " + shape_string(t.shape) + ", expected " + shape_string(e.shape);
    }
  }
  return std::nullopt;
}

std::optional<std::string> ModelParameters::first_non_finite() const {
  for (const auto& t : tensors_) {
    if (t.dtype == DType::kFloat32) {
      if (!has_all_ones_exponent<std::uint32_t>(t.data, 0x7F800000u)) continue;
      for (float v : t.as<float>()) {
        if (!std::isfinite(v)) return "tensor '" + t.name + "' contains " + (std::isnan(v) ? "NaN" : "Inf");
      }
    } else if (t.dtype == DType::kFloat64) {
      if (!has_all_ones_exponent<std::uint64_t>(t.data, 0x7FF0000000000000u)) continue;
      for (double v : t.as<double>()) {
        if (!std::isfinite(v)) return "tensor '" + t.name + "' contains " + (std::isnan(v) ? "NaN" : "Inf");
      }
    } else if (t.dtype == DType::kFloat16 || t.dtype == DType::kBFloat16) {
      const std::uint16_t mask = t.dtype == DType::kFloat16 ? 0x7C00u : 0x7F80u;
      for (std::size_t i = 0; i + 1 < t.data.size(); i += 2) {
        if (const char* what = non_finite_16(t.data.data() + i, mask))
          return "tensor '" + t.name + "' contains " + what;
      }
    }
  }
  return std::nullopt;
}

bool ModelParameters::operator==(const ModelParameters& other) const {
  if (tensors_.size() != other.tensors_.size()) return false;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& a = tensors_[i];
    const Tensor& b = other.tensors_[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.data != b.data) return false;
  }
  return true;
}

ModelParameters subtract(const ModelParameters& a, const ModelParameters& b) {
  return combine(
      a, b, [](auto x, auto y) { return x - y; }, "subtract");
}

Tensor subtract(const Tensor& a, const Tensor& b) {
  return combine_tensors(
      a, b, [](auto x, auto y) { return x - y; }, "subtract");
}

ModelParameters add(const ModelParameters& a, const ModelParameters& b) {
  return combine(
      a, b, [](auto x, auto y) { return x + y; }, "add");
}

}  // namespace sotto::model
