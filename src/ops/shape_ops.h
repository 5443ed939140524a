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

// The adjoint of gather_by_map, for gradients: in[map[k]] += out[k] for every
// element k of out whose map entry is not negative (float32/float64). An
// element read several times (Gather's repeated indices, a reflected or
// edge-padded border) collects each reading's gradient.
void scatter_add_by_map(Tensor& in, const Tensor& out, const std::vector<int64_t>& map);

// Concat joins pieces along `axis` into a whole tensor and Split cuts one
// into pieces; each (and each one's gradient, which is the other) moves the
// same runs of elements. Calls fn(piece, piece_offset, whole_offset, count),
// in elements, for every run, where `sizes` are the pieces' sizes along the
// axis of `whole`.
template <typename Fn>
void for_each_run(const Shape& whole, int axis, const std::vector<int64_t>& sizes, Fn&& fn) {
  int64_t outer = shape_numel(Shape(whole.begin(), whole.begin() + axis));
  int64_t inner = shape_numel(Shape(whole.begin() + axis + 1, whole.end()));
  int64_t offset = 0;  // where the current piece starts along `axis`
  for (size_t i = 0; i < sizes.size(); ++i) {
    int64_t run = sizes[i] * inner;  // one piece's run per outer index
    for (int64_t o = 0; o < outer && run > 0; ++o)
      fn(i, o * run, (o * whole[axis] + offset) * inner, run);
    offset += sizes[i];
  }
}

// Copies `count` elements from src at src_offset to dst at dst_offset (same dtype).
void copy_run(Tensor& dst, int64_t dst_offset, const Tensor& src, int64_t src_offset,
              int64_t count);

// Int64 values of an integer tensor (int32 or int64) given as a shape-like
// input (shape, axes, starts, pads...); kInvalidArgument for other dtypes.
std::vector<int64_t> int_values(const Tensor& t, const char* what);

// Pad's amounts, all begins then all ends: the `paddings` attribute (opset
// 1), the `pads` attribute (opsets 2-10) or the pads input (opset 11).
std::vector<int64_t> pad_amounts(const Node& node, int opset, const Tensor* pads_input);

}  // namespace graft::ops
