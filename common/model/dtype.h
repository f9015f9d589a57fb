// DType: the element types a model tensor can hold, with their sizes and names.
//
// Mirrors sotto.v1.DType on the wire; kept separate so that code working on parameters needs no protobuf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sotto::model {

enum class DType : std::uint8_t {
  kFloat32 = 1,
  kFloat64 = 2,
  kInt64 = 3,
  kInt32 = 4,
  kUInt8 = 5,
  kInt8 = 6,
  kFloat16 = 7,
  kBFloat16 = 8,
  kBool = 9,
};

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
bool is_floating(DType dtype);
// Throws sotto::Error for a value that is not one of the enumerators (e.g. read off the wire).
DType dtype_from_int(int value);

}  // namespace sotto::model
