// The spatial arithmetic shared by the sliding-window ops (Conv,
// ConvTranspose, AveragePool, MaxPool): window sizes, strides, dilations and
// padding read from a node's attributes, with auto_pad resolved into explicit
// begin/end pads, and the output size along each spatial axis. Written once
// so the three op groups cannot disagree about it.
#pragma once

#include <array>

#include "graft/graph.h"

namespace graft::ops {

struct ConvGeometry {
  Shape in;      // input spatial sizes
  Shape kernel;  // window (kernel) sizes
  Shape strides;
  Shape dilations;
  Shape pad_begin;  // may be negative for ConvTranspose with output_shape
  Shape pad_end;
  Shape out;  // output spatial sizes

  int rank() const { return static_cast<int>(in.size()); }
  // Span of the dilated window along axis i.
  int64_t extent(int i) const { return (kernel[i] - 1) * dilations[i] + 1; }
  // The same geometry over exactly three spatial axes, leading axes of size 1
  // added, so one 3-D loop nest serves 1-D, 2-D and 3-D ops. Rank above 3 is
  // kUnsupported.
  ConvGeometry as_3d() const;
};

// Throws kUnsupported naming the value when auto_pad is not one of ONNX's
// NOTSET, VALID, SAME_UPPER, SAME_LOWER.
void check_auto_pad(const Node& node);

// Conv and pooling: out = floor_or_ceil((in + pads - extent) / stride) + 1.
// `kernel` is the window size (the weight's spatial dims for Conv; for
// pooling the kernel_shape attribute). kInvalidArgument on attributes that do
// not fit the input (wrong lengths, non-positive strides, empty output).
ConvGeometry window_geometry(const Node& node, const Shape& in, const Shape& kernel,
                             bool ceil_mode);

// ConvTranspose: out = stride * (in - 1) + output_padding + extent - pads,
// or output_shape when given (pads then follow from it, as ONNX specifies).
ConvGeometry transposed_geometry(const Node& node, const Shape& in, const Shape& kernel);

// The positions j in [0, count) whose target j * stride + offset lies in
// [0, limit), as a half-open range [first, last). Lets kernel loops skip
// padding without a test in the innermost loop.
struct IndexRange {
  int64_t first = 0, last = 0;
};
IndexRange valid_range(int64_t count, int64_t stride, int64_t offset, int64_t limit);

// A shape's dims after the first two (batch and channels).
Shape spatial_dims(const Shape& shape);

}  // namespace graft::ops
