// Small helpers the reference kernels share: axis normalisation, numpy
// broadcasting, strides, and dtype dispatch.
#pragma once

#include <cmath>
#include <vector>

#include "graft/tensor.h"

namespace graft::ops {

// Maps a possibly negative axis into [0, rank); kInvalidArgument if out of range.
int normalize_axis(int64_t axis, int rank);

// Row-major strides of a shape (in elements).
std::vector<int64_t> strides_of(const Shape& shape);

// The numpy-broadcast shape of a and b; kInvalidArgument if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);

// True when `from` broadcasts to `to` without growing it (unidirectional).
bool broadcasts_to(const Shape& from, const Shape& to);

// For each element of `out_shape`, the flat index into a tensor of shape
// `in_shape` broadcast to it (in_shape is right-aligned against out_shape).
std::vector<int64_t> broadcast_index_map(const Shape& in_shape, const Shape& out_shape);

// Calls fn(T{}) for the floating dtypes float and double; kUnsupported otherwise.
template <typename Fn>
decltype(auto) visit_float(DType t, Fn&& fn) {
  if (t == DType::kF64) return fn(double{});
  GRAFT_CHECK(t == DType::kF32, kUnsupported, "dtype {} is not supported here", dtype_name(t));
  return fn(float{});
}

// Calls fn(T{}) for the numeric dtypes (all but float16 and bool).
template <typename Fn>
decltype(auto) visit_numeric(DType t, Fn&& fn) {
  GRAFT_CHECK(t != DType::kF16 && t != DType::kBool, kUnsupported,
              "dtype {} is not supported here", dtype_name(t));
  return visit_dtype(t, [&](auto tag) -> decltype(auto) {
    if constexpr (std::is_same_v<decltype(tag), Half> || std::is_same_v<decltype(tag), bool>)
      return fn(float{});  // unreachable: excluded above
    else
      return fn(tag);
  });
}

}  // namespace graft::ops
