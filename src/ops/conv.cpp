// Convolution: Conv and ConvTranspose, and the sliding-window geometry they
// share with pooling (conv_geometry.h).
#include <algorithm>

#include "backend/backend.h"
#include "ops/conv_geometry.h"
#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

// --- geometry ---------------------------------------------------------------

namespace {

// Python's floor division: ConvTranspose's total padding can be negative
// (output_shape larger than the full output) and ONNX splits it with `//`.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// A per-axis attribute (strides, dilations, output_padding), `fill` when absent.
Shape axis_attr(const Node& node, const char* key, size_t rank, int64_t fill) {
  Shape v = node.attr_ints(key, Shape(rank, fill));
  GRAFT_CHECK(v.size() == rank, kInvalidArgument,
              "attribute '{}' has {} values; the input has {} spatial axes", key, v.size(), rank);
  return v;
}

// Sizes, strides, dilations and explicit pads, before auto_pad is applied.
ConvGeometry base_geometry(const Node& node, const Shape& in, const Shape& kernel) {
  size_t rank = in.size();
  GRAFT_CHECK(kernel.size() == rank, kInvalidArgument,
              "attribute 'kernel_shape' has {} values; the input has {} spatial axes",
              kernel.size(), rank);
  ConvGeometry g;
  g.in = in;
  g.kernel = kernel;
  g.strides = axis_attr(node, "strides", rank, 1);
  g.dilations = axis_attr(node, "dilations", rank, 1);
  Shape pads = node.attr_ints("pads", Shape(2 * rank, 0));
  GRAFT_CHECK(pads.size() == 2 * rank, kInvalidArgument,
              "attribute 'pads' has {} values; {} spatial axes need {}", pads.size(), rank,
              2 * rank);
  g.pad_begin.assign(pads.begin(), pads.begin() + rank);
  g.pad_end.assign(pads.begin() + rank, pads.end());
  for (size_t i = 0; i < rank; ++i) {
    GRAFT_CHECK(kernel[i] > 0, kInvalidArgument, "kernel size {} on spatial axis {}", kernel[i], i);
    GRAFT_CHECK(g.strides[i] > 0, kInvalidArgument, "stride {} on spatial axis {} is not positive",
                g.strides[i], i);
    GRAFT_CHECK(g.dilations[i] > 0, kInvalidArgument,
                "dilation {} on spatial axis {} is not positive", g.dilations[i], i);
    GRAFT_CHECK(g.pad_begin[i] >= 0 && g.pad_end[i] >= 0, kInvalidArgument,
                "negative padding on spatial axis {}", i);
  }
  g.out.assign(rank, 0);
  return g;
}

// Splits a total padding between the two ends; the odd unit goes to the end
// for SAME_UPPER and to the beginning otherwise.
void split_padding(int64_t total, bool upper, int64_t& begin, int64_t& end) {
  begin = upper ? floor_div(total, 2) : total - floor_div(total, 2);
  end = total - begin;
}

}  // namespace

void check_auto_pad(const Node& node) {
  std::string mode = node.attr_string("auto_pad", "NOTSET");
  GRAFT_CHECK(mode == "NOTSET" || mode == "VALID" || mode == "SAME_UPPER" || mode == "SAME_LOWER",
              kUnsupported, "auto_pad '{}' is not supported", mode);
}

ConvGeometry window_geometry(const Node& node, const Shape& in, const Shape& kernel,
                             bool ceil_mode) {
  ConvGeometry g = base_geometry(node, in, kernel);
  std::string mode = node.attr_string("auto_pad", "NOTSET");
  for (int i = 0; i < g.rank(); ++i) {
    int64_t s = g.strides[i];
    if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
      g.out[i] = ceil_div(in[i], s);
      int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * s + g.extent(i) - in[i]);
      split_padding(total, mode == "SAME_UPPER", g.pad_begin[i], g.pad_end[i]);
      continue;
    }
    if (mode == "VALID") g.pad_begin[i] = g.pad_end[i] = 0;
    int64_t span = in[i] + g.pad_begin[i] + g.pad_end[i] - g.extent(i);
    GRAFT_CHECK(span >= 0, kInvalidArgument,
                "window of {} (kernel {}, dilation {}) is larger than the padded input {} on "
                "spatial axis {}",
                g.extent(i), g.kernel[i], g.dilations[i], in[i] + g.pad_begin[i] + g.pad_end[i], i);
    g.out[i] = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
    // As in PyTorch, ceil mode never starts a window inside the end padding.
    if (ceil_mode && (g.out[i] - 1) * s >= in[i] + g.pad_begin[i]) --g.out[i];
  }
  return g;
}

ConvGeometry transposed_geometry(const Node& node, const Shape& in, const Shape& kernel) {
  ConvGeometry g = base_geometry(node, in, kernel);
  size_t rank = in.size();
  Shape output_padding = axis_attr(node, "output_padding", rank, 0);
  Shape output_shape = node.attr_ints("output_shape");
  // Some exporters give output_shape with the batch and channel dims too.
  if (output_shape.size() == rank + 2)
    output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
  GRAFT_CHECK(output_shape.empty() || output_shape.size() == rank, kInvalidArgument,
              "attribute 'output_shape' has {} values; the input has {} spatial axes",
              output_shape.size(), rank);
  std::string mode = node.attr_string("auto_pad", "NOTSET");
  for (size_t i = 0; i < rank; ++i) {
    GRAFT_CHECK(output_padding[i] >= 0, kInvalidArgument,
                "output_padding {} on spatial axis {} is negative", output_padding[i], i);
    int64_t full = g.strides[i] * (in[i] - 1) + output_padding[i] + g.extent(static_cast<int>(i));
    if (mode == "VALID") g.pad_begin[i] = g.pad_end[i] = 0;
    if (!output_shape.empty() || mode == "SAME_UPPER" || mode == "SAME_LOWER") {
      int64_t target = output_shape.empty() ? in[i] * g.strides[i] : output_shape[i];
      split_padding(full - target, mode == "SAME_UPPER", g.pad_begin[i], g.pad_end[i]);
    }
    g.out[i] = full - g.pad_begin[i] - g.pad_end[i];
    GRAFT_CHECK(g.out[i] >= 0, kInvalidArgument,
                "pads {} and {} exceed the output size {} on spatial axis {}", g.pad_begin[i],
                g.pad_end[i], full, i);
  }
  return g;
}

ConvGeometry ConvGeometry::as_3d() const {
  GRAFT_CHECK(rank() <= 3, kUnsupported, "{} spatial axes (graft supports 1 to 3)", rank());
  ConvGeometry g;
  size_t lead = 3 - in.size();
  auto lift = [lead](const Shape& v, int64_t fill) {
    Shape r(lead, fill);
    r.insert(r.end(), v.begin(), v.end());
    return r;
  };
  g.in = lift(in, 1);
  g.kernel = lift(kernel, 1);
  g.strides = lift(strides, 1);
  g.dilations = lift(dilations, 1);
  g.pad_begin = lift(pad_begin, 0);
  g.pad_end = lift(pad_end, 0);
  g.out = lift(out, 1);
  return g;
}

IndexRange valid_range(int64_t count, int64_t stride, int64_t offset, int64_t limit) {
  IndexRange r;
  r.first = std::min(count, offset >= 0 ? 0 : ceil_div(-offset, stride));
  r.last = limit - 1 - offset < 0 ? 0 : std::min(count, (limit - 1 - offset) / stride + 1);
  r.last = std::max(r.first, r.last);
  return r;
}

Shape spatial_dims(const Shape& shape) {
  return shape.size() <= 2 ? Shape{} : Shape(shape.begin() + 2, shape.end());
}

// --- Conv and ConvTranspose ---------------------------------------------------

namespace {

// Channel bookkeeping shared by both kernels.
struct ConvChannels {
  int64_t batch = 0;
  int64_t groups = 1;
  int64_t in_per_group = 0;   // input channels per group
  int64_t out_per_group = 0;  // output channels per group
};

// One kernel tap k = (kd, kh, kw) links a position `near` on the small side
// of a convolution (Conv's output, ConvTranspose's input) to the position
// far = near * stride + k * dilation - pad_begin on the large side (Conv's
// input, ConvTranspose's output). Calls fn(near, far) with flat plane
// indices for every pair whose far position is inside the plane (outside is
// zero padding). Every Conv and ConvTranspose kernel, forward and backward,
// is this walk with a different multiply-add.
template <typename Fn>
void for_each_tap_pair(const Shape& near, const Shape& far, const ConvGeometry& g,
                       const int64_t k[3], Fn&& fn) {
  int64_t off[3];
  IndexRange r[3];
  for (int a = 0; a < 3; ++a) {
    off[a] = k[a] * g.dilations[a] - g.pad_begin[a];
    r[a] = valid_range(near[a], g.strides[a], off[a], far[a]);
  }
  for (int64_t d = r[0].first; d < r[0].last; ++d) {
    int64_t fd = d * g.strides[0] + off[0];
    for (int64_t h = r[1].first; h < r[1].last; ++h) {
      int64_t fh = h * g.strides[1] + off[1];
      int64_t near_row = (d * near[1] + h) * near[2];
      int64_t far_row = (fd * far[1] + fh) * far[2] + off[2];
      for (int64_t w = r[2].first; w < r[2].last; ++w) fn(near_row + w, far_row + w * g.strides[2]);
    }
  }
}

// Calls fn(tap index, k[3]) for every tap of a 3-D kernel, in weight order.
template <typename Fn>
void for_each_tap(const ConvGeometry& g, Fn&& fn) {
  int64_t t = 0;
  int64_t k[3];
  for (k[0] = 0; k[0] < g.kernel[0]; ++k[0])
    for (k[1] = 0; k[1] < g.kernel[1]; ++k[1])
      for (k[2] = 0; k[2] < g.kernel[2]; ++k[2]) fn(t++, k);
}

// Starts every output plane at its channel's bias (or zero).
template <typename T>
void fill_bias(T* y, const T* bias, int64_t batch, int64_t channels, int64_t plane) {
  if (!bias) return;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t m = 0; m < channels; ++m)
      std::fill_n(y + (n * channels + m) * plane, plane, bias[m]);
}

// The bias gradient: dy summed over the batch and each output plane.
template <typename T>
void bias_grad(const T* dy, T* db, int64_t batch, int64_t channels, int64_t plane) {
  for (int64_t m = 0; m < channels; ++m) {
    double sum = 0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < plane; ++i) sum += dy[(n * channels + m) * plane + i];
    db[m] = static_cast<T>(sum);
  }
}

// Calls fn(x plane, y plane, weight offset) for every (input channel,
// output channel) pair that a weight of a grouped Conv links, one output
// plane at a time. Weights are (C_out, C_in / group, kernel...).
template <typename Fn>
void for_each_conv_plane_pair(const ConvChannels& ch, const ConvGeometry& g, Fn&& fn) {
  int64_t in_plane = shape_numel(g.in), out_plane = shape_numel(g.out);
  int64_t taps = shape_numel(g.kernel);
  int64_t in_channels = ch.groups * ch.in_per_group, out_channels = ch.groups * ch.out_per_group;
  for (int64_t n = 0; n < ch.batch; ++n)
    for (int64_t m = 0; m < out_channels; ++m) {
      int64_t group = m / ch.out_per_group;
      for (int64_t c = 0; c < ch.in_per_group; ++c)
        fn((n * in_channels + group * ch.in_per_group + c) * in_plane,
           (n * out_channels + m) * out_plane, (m * ch.in_per_group + c) * taps);
    }
}

// The same for ConvTranspose, whose weights are (C_in, C_out / group,
// kernel...): each input channel scatters into the output channels of its
// group.
template <typename Fn>
void for_each_transpose_plane_pair(const ConvChannels& ch, const ConvGeometry& g, Fn&& fn) {
  int64_t in_plane = shape_numel(g.in), out_plane = shape_numel(g.out);
  int64_t taps = shape_numel(g.kernel);
  int64_t in_channels = ch.groups * ch.in_per_group, out_channels = ch.groups * ch.out_per_group;
  for (int64_t n = 0; n < ch.batch; ++n)
    for (int64_t c = 0; c < in_channels; ++c) {
      int64_t group = c / ch.in_per_group;
      for (int64_t m = 0; m < ch.out_per_group; ++m)
        fn((n * in_channels + c) * in_plane,
           (n * out_channels + group * ch.out_per_group + m) * out_plane,
           (c * ch.out_per_group + m) * taps);
    }
}

// y[near] += w * x[far]: one output plane at a time, accumulating every input
// channel and tap into it, so the plane stays in cache.
template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, T* y, const ConvChannels& ch,
                  const ConvGeometry& g) {
  fill_bias(y, bias, ch.batch, ch.groups * ch.out_per_group, shape_numel(g.out));
  for_each_conv_plane_pair(ch, g, [&](int64_t xo, int64_t yo, int64_t wo) {
    for_each_tap(g, [&](int64_t t, const int64_t k[3]) {
      T wt = w[wo + t];
      for_each_tap_pair(g.out, g.in, g, k,
                        [&](int64_t o, int64_t i) { y[yo + o] += wt * x[xo + i]; });
    });
  });
}

// The transpose of every forward multiply-add y[o] += w * x[i]:
// dx[i] += w * dy[o] and dw += dy[o] * x[i]. dx or dw may be null (not wanted).
template <typename T>
void conv_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, const ConvChannels& ch,
                   const ConvGeometry& g) {
  for_each_conv_plane_pair(ch, g, [&](int64_t xo, int64_t yo, int64_t wo) {
    for_each_tap(g, [&](int64_t t, const int64_t k[3]) {
      T wt = w[wo + t];
      double dwt = 0;
      for_each_tap_pair(g.out, g.in, g, k, [&](int64_t o, int64_t i) {
        if (dx) dx[xo + i] += wt * dy[yo + o];
        dwt += static_cast<double>(dy[yo + o]) * x[xo + i];
      });
      if (dw) dw[wo + t] += static_cast<T>(dwt);
    });
  });
}

// y[far] += w * x[near].
template <typename T>
void conv_transpose_forward(const T* x, const T* w, const T* bias, T* y, const ConvChannels& ch,
                            const ConvGeometry& g) {
  fill_bias(y, bias, ch.batch, ch.groups * ch.out_per_group, shape_numel(g.out));
  for_each_transpose_plane_pair(ch, g, [&](int64_t xo, int64_t yo, int64_t wo) {
    for_each_tap(g, [&](int64_t t, const int64_t k[3]) {
      T wt = w[wo + t];
      for_each_tap_pair(g.in, g.out, g, k,
                        [&](int64_t i, int64_t o) { y[yo + o] += wt * x[xo + i]; });
    });
  });
}

// The transpose of y[o] += w * x[i] again: dx[i] += w * dy[o], dw += dy[o] * x[i].
template <typename T>
void conv_transpose_backward(const T* x, const T* w, const T* dy, T* dx, T* dw,
                             const ConvChannels& ch, const ConvGeometry& g) {
  for_each_transpose_plane_pair(ch, g, [&](int64_t xo, int64_t yo, int64_t wo) {
    for_each_tap(g, [&](int64_t t, const int64_t k[3]) {
      T wt = w[wo + t];
      double dwt = 0;
      for_each_tap_pair(g.in, g.out, g, k, [&](int64_t i, int64_t o) {
        if (dx) dx[xo + i] += wt * dy[yo + o];
        dwt += static_cast<double>(dy[yo + o]) * x[xo + i];
      });
      if (dw) dw[wo + t] += static_cast<T>(dwt);
    });
  });
}

// Channels and geometry of a Conv node from its input and weight, for the
// kernels (shape inference has already checked them).
ConvChannels conv_channels(const Node& node, const Tensor& x, const Tensor& w) {
  ConvChannels ch;
  ch.batch = x.dim(0);
  ch.groups = node.attr_int("group", 1);
  ch.in_per_group = w.dim(1);
  ch.out_per_group = w.dim(0) / ch.groups;
  return ch;
}

ConvGeometry conv_geometry(const Node& node, const Tensor& x, const Tensor& w) {
  return window_geometry(node, spatial_dims(x.shape()), spatial_dims(w.shape()), false).as_3d();
}

ConvChannels conv_transpose_channels(const Node& node, const Tensor& x, const Tensor& w) {
  ConvChannels ch;
  ch.batch = x.dim(0);
  ch.groups = node.attr_int("group", 1);
  ch.in_per_group = x.dim(1) / ch.groups;
  ch.out_per_group = w.dim(1);
  return ch;
}

ConvGeometry conv_transpose_geometry(const Node& node, const Tensor& x, const Tensor& w) {
  return transposed_geometry(node, spatial_dims(x.shape()), spatial_dims(w.shape())).as_3d();
}

const std::vector<std::string> kConvAttributes = {"auto_pad",     "dilations", "group",
                                                  "kernel_shape", "pads",      "strides"};

void check_conv(const Node& node, int) { check_auto_pad(node); }

// The weight's spatial dims, checked against kernel_shape when given.
Shape weight_kernel(const Node& node, const Shape& w) {
  Shape kernel = spatial_dims(w);
  if (node.has_attr("kernel_shape"))
    GRAFT_CHECK(node.attr_ints("kernel_shape") == kernel, kInvalidArgument,
                "kernel_shape {} does not match the weight's shape {}",
                shape_str(node.attr_ints("kernel_shape")), shape_str(w));
  return kernel;
}

// Checks dtypes, ranks, group and bias common to Conv and ConvTranspose.
void check_conv_inputs(InferContext& c, int64_t out_channels) {
  c.require_dtype(0, {DType::kF32, DType::kF64});
  c.check(c.dtype(1) == c.dtype(0), "weight dtype {} differs from input dtype {}",
          dtype_name(c.dtype(1)), dtype_name(c.dtype(0)));
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(1);
  c.check(x.size() >= 3,
          "input has shape {}; {} needs N x C x D1 x ... (at least one spatial axis)", shape_str(x),
          c.node.op_type);
  c.check(w.size() == x.size(), "weight has shape {}, which does not match the input's rank {}",
          shape_str(w), x.size());
  c.check(c.node.attr_int("group", 1) >= 1, "group {} is not positive",
          c.node.attr_int("group", 1));
  if (c.has_input(2)) {
    c.check(c.dtype(2) == c.dtype(0), "bias dtype {} differs from input dtype {}",
            dtype_name(c.dtype(2)), dtype_name(c.dtype(0)));
    c.check(c.shape(2) == Shape{out_channels},
            "bias has shape {}; expected {} (one value per output channel)", shape_str(c.shape(2)),
            out_channels);
  }
}

OpDef conv_op() {
  OpDef d;
  d.type = "Conv";
  d.min_inputs = 2;
  d.max_inputs = 3;
  d.attributes = kConvAttributes;
  d.check = check_conv;
  d.infer = [](InferContext& c) {
    const Shape& x = c.shape(0);
    const Shape& w = c.shape(1);
    check_conv_inputs(c, w.empty() ? 0 : w[0]);
    int64_t group = c.node.attr_int("group", 1);
    c.check(x[1] % group == 0 && w[1] * group == x[1],
            "weight {} takes {} channels per group; the input has {} channels in {} groups",
            shape_str(w), w[1], x[1], group);
    c.check(w[0] % group == 0, "{} output channels do not divide into {} groups", w[0], group);
    ConvGeometry g = window_geometry(c.node, spatial_dims(x), weight_kernel(c.node, w), false);
    g.as_3d();  // rejects unsupported ranks before running
    Shape out = {x[0], w[0]};
    out.insert(out.end(), g.out.begin(), g.out.end());
    c.set_output(0, c.dtype(0), out);
  };
  d.fast_compute = backend::conv_forward;
  d.fast_backward = backend::conv_backward;
  d.backward_reads_outputs = false;
  d.compute = [](KernelContext& c) {
    const Tensor& x = c.in(0);
    const Tensor& w = c.in(1);
    ConvChannels ch = conv_channels(c.node, x, w);
    ConvGeometry g = conv_geometry(c.node, x, w);
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* bias = c.has_input(2) ? c.in(2).data<T>() : nullptr;
      conv_forward(x.data<T>(), w.data<T>(), bias, c.out(0).data<T>(), ch, g);
    });
  };
  d.differentiable_inputs = {0, 1, 2};
  d.backward = [](BackwardContext& c) {
    if (!c.has_grad_output(0)) return;
    const Tensor& x = c.in(0);
    const Tensor& w = c.in(1);
    ConvChannels ch = conv_channels(c.node, x, w);
    ConvGeometry g = conv_geometry(c.node, x, w);
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* dy = c.grad_out(0).data<T>();
      T* dx = c.wants_grad(0) ? c.grad_in(0).data<T>() : nullptr;
      T* dw = c.wants_grad(1) ? c.grad_in(1).data<T>() : nullptr;
      if (dx || dw) conv_backward(x.data<T>(), w.data<T>(), dy, dx, dw, ch, g);
      if (c.wants_grad(2))
        bias_grad(dy, c.grad_in(2).data<T>(), ch.batch, w.dim(0), shape_numel(g.out));
    });
  };
  return d;
}

OpDef conv_transpose_op() {
  OpDef d;
  d.type = "ConvTranspose";
  d.min_inputs = 2;
  d.max_inputs = 3;
  d.attributes = kConvAttributes;
  d.attributes.push_back("output_padding");
  d.attributes.push_back("output_shape");
  d.check = check_conv;
  d.infer = [](InferContext& c) {
    const Shape& x = c.shape(0);
    const Shape& w = c.shape(1);
    int64_t group = c.node.attr_int("group", 1);
    check_conv_inputs(c, w.size() < 2 ? 0 : w[1] * group);
    c.check(w[0] == x[1], "weight {} takes {} input channels; the input has {}", shape_str(w), w[0],
            x[1]);
    c.check(x[1] % group == 0, "{} input channels do not divide into {} groups", x[1], group);
    ConvGeometry g = transposed_geometry(c.node, spatial_dims(x), weight_kernel(c.node, w));
    g.as_3d();
    Shape out = {x[0], w[1] * group};
    out.insert(out.end(), g.out.begin(), g.out.end());
    c.set_output(0, c.dtype(0), out);
  };
  d.compute = [](KernelContext& c) {
    const Tensor& x = c.in(0);
    const Tensor& w = c.in(1);
    ConvChannels ch = conv_transpose_channels(c.node, x, w);
    ConvGeometry g = conv_transpose_geometry(c.node, x, w);
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* bias = c.has_input(2) ? c.in(2).data<T>() : nullptr;
      conv_transpose_forward(x.data<T>(), w.data<T>(), bias, c.out(0).data<T>(), ch, g);
    });
  };
  d.differentiable_inputs = {0, 1, 2};
  d.backward = [](BackwardContext& c) {
    if (!c.has_grad_output(0)) return;
    const Tensor& x = c.in(0);
    const Tensor& w = c.in(1);
    ConvChannels ch = conv_transpose_channels(c.node, x, w);
    ConvGeometry g = conv_transpose_geometry(c.node, x, w);
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* dy = c.grad_out(0).data<T>();
      T* dx = c.wants_grad(0) ? c.grad_in(0).data<T>() : nullptr;
      T* dw = c.wants_grad(1) ? c.grad_in(1).data<T>() : nullptr;
      if (dx || dw) conv_transpose_backward(x.data<T>(), w.data<T>(), dy, dx, dw, ch, g);
      if (c.wants_grad(2))
        bias_grad(dy, c.grad_in(2).data<T>(), ch.batch, ch.groups * ch.out_per_group,
                  shape_numel(g.out));
    });
  };
  return d;
}

}  // namespace

void register_conv_ops(OpRegistry& r) {
  r.add(conv_op());
  r.add(conv_transpose_op());
}

}  // namespace graft::ops
