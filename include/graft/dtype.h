// Element types graft stores. Float16 is kept as raw bits (graft::Half) and
// converted to float32 by the kernels that accept it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace graft {

enum class DType : uint8_t { kF32, kF64, kF16, kI64, kI32, kI8, kU8, kBool };

struct Half {
  uint16_t bits = 0;
};
float half_to_float(Half h);
Half float_to_half(float f);

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "int64", ...
bool is_floating(DType t);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }
template <> constexpr DType dtype_of<Half>() { return DType::kF16; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kI64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kI32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::kI8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kU8; }
template <> constexpr DType dtype_of<bool>() { return DType::kBool; }

// Calls fn(T{}) with T the C++ type of `t`.
template <typename Fn>
decltype(auto) visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32: return fn(float{});
    case DType::kF64: return fn(double{});
    case DType::kF16: return fn(Half{});
    case DType::kI64: return fn(int64_t{});
    case DType::kI32: return fn(int32_t{});
    case DType::kI8: return fn(int8_t{});
    case DType::kU8: return fn(uint8_t{});
    case DType::kBool: return fn(bool{});
  }
  return fn(float{});
}

}  // namespace graft
