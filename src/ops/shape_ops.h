// Helpers shared by the data-movement ops in shape.cpp and shape_index.cpp.
// These ops only move elements, so their kernels work on every dtype.
#pragma once

#include <vector>

#include "ops/op.h"

namespace graft::ops {

// Split, Slice, Gather and Pad (shape_index.cpp); register_shape_ops calls it.
void register_shape_index_ops(OpRegistry& r);

// Copies src's elements, in order, into out (same dtype and element count).
void copy_elements(Tensor& out, const Tensor& src);

// For every element of a tensor of shape `out_shape` (row-major order), the
// flat offset `base + sum(index[d] * strides[d])`: the source element of a
// strided view such as a transpose or a slice.
std::vector<int64_t> strided_index_map(const Shape& out_shape, int64_t base,
                                       const std::vector<int64_t>& strides);

// out[k] = in[map[k]] for every element k of out (same dtype). A negative
// map entry sets out[k] to `fill`, a one-element tensor of that dtype, or
// leaves it zero when fill is nullptr.
void gather_by_map(Tensor& out, const Tensor& in, const std::vector<int64_t>& map,
                   const Tensor* fill = nullptr);

// Int64 values of an integer tensor (int32 or int64) given as a shape-like
// input (shape, axes, starts, pads...); kInvalidArgument for other dtypes.
std::vector<int64_t> int_values(const Tensor& t, const char* what);

}  // namespace graft::ops
