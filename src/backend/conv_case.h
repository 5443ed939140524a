// A Conv node's case in oneDNN's terms, shared by the convolution
// primitives (conv.cpp) and the matmul form of pointwise convolutions
// (pointwise.cpp).
#pragma once

#include <optional>
#include <string>

#include "backend/dnnl_util.h"
#include "ops/conv_geometry.h"
#include "ops/op.h"

namespace graft::backend {

struct ConvCase {
  Dims x, w, b, y;  // w is (group, C_out / group, C_in / group, k...) when grouped
  Dims strides, dilates, pad_l, pad_r;
  bool bias = false;

  // Multiply-adds of one pass (forward, backward data or backward weights).
  int64_t macs() const {
    return shape_numel(Shape(y.begin(), y.end())) / y[1] * shape_numel(Shape(w.begin(), w.end()));
  }

  // 1x1 kernel, unit strides, no padding, one group.
  bool pointwise() const {
    bool unit = w.size() == x.size();  // not grouped
    for (size_t i = 2; i < w.size(); ++i) unit = unit && w[i] == 1;
    for (size_t i = 0; i < strides.size(); ++i)
      unit = unit && strides[i] == 1 && pad_l[i] == 0 && pad_r[i] == 0;
    return unit;
  }

  // 2-D, one input and one output channel per group, no dilation.
  bool depthwise() const {
    bool plain = x.size() == 4 && w.size() == 5 && w[0] == x[1] && w[1] == 1 && w[2] == 1;
    for (int64_t d : dilates) plain = plain && d == 0;
    return plain;
  }

  // 2-D, one group, no dilation, few input values under the window (a
  // network's first layer): unfolded_conv.cpp.
  bool unfolds() const {
    bool plain = x.size() == 4 && w.size() == 4 && x[1] * w[2] * w[3] <= 32 && !pointwise();
    for (int64_t d : dilates) plain = plain && d == 0;
    return plain;
  }

  std::string key(const char* what) const {
    return fmt::format("{} x{} w{} y{} b{} s{} d{} l{} r{}", what, key_dims(x), key_dims(w),
                       key_dims(y), bias, key_dims(strides), key_dims(dilates), key_dims(pad_l),
                       key_dims(pad_r));
  }
};

inline std::optional<ConvCase> conv_case(const Node& node, const Shape& x, const Shape& w,
                                         bool bias) {
  if (x.size() < 3 || x.size() > 5 || shape_numel(x) == 0 || shape_numel(w) == 0)
    return std::nullopt;
  ops::ConvGeometry g = ops::window_geometry(node, ops::spatial_dims(x), ops::spatial_dims(w), false);
  int64_t groups = node.attr_int("group", 1);
  ConvCase k;
  k.x = to_dims(x);
  k.w = to_dims(w);
  if (groups > 1) {
    k.w[0] /= groups;
    k.w.insert(k.w.begin(), groups);
  }
  k.y = {x[0], w[0]};
  k.y.insert(k.y.end(), g.out.begin(), g.out.end());
  if (shape_numel(k.y) == 0) return std::nullopt;
  k.b = {w[0]};
  k.strides = to_dims(g.strides);
  for (int64_t d : g.dilations) k.dilates.push_back(d - 1);  // oneDNN counts the gaps
  k.pad_l = to_dims(g.pad_begin);
  k.pad_r = to_dims(g.pad_end);
  k.bias = bias;
  return k;
}

// The pointwise case on oneDNN's matmul (pointwise.cpp); false when its
// primitives are not fast kernels, so the convolution primitives run it.
bool pointwise_forward(const ops::KernelContext& c, const ConvCase& k);
bool pointwise_backward(const ops::BackwardContext& c, const ConvCase& k);
// The few-input-channels case as products over the unfolded input
// (unfolded_conv.cpp); the backward declines when the input's gradient is
// wanted.
bool unfolded_forward(const ops::KernelContext& c, const ConvCase& k);
bool unfolded_backward(const ops::BackwardContext& c, const ConvCase& k);
// The depthwise case as loops on NCHW (depthwise.cpp).
bool depthwise_forward(const ops::KernelContext& c, const ConvCase& k);
bool depthwise_backward(const ops::BackwardContext& c, const ConvCase& k);

}  // namespace graft::backend
