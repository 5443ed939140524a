// Pooling: GlobalAveragePool, GlobalMaxPool, AveragePool, MaxPool. The window
// geometry is shared with Conv (conv_geometry.h).
#include <limits>

#include "backend/backend.h"
#include "ops/conv_geometry.h"
#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

// --- global pooling -----------------------------------------------------------

// (N, C, D1, ...) -> (N, C, 1, ...): one value per channel plane.
void infer_global(InferContext& c) {
  const Shape& x = c.shape(0);
  c.check(x.size() >= 2, "input has shape {}; {} needs N x C x ...", shape_str(x), c.node.op_type);
  Shape out(x.size(), 1);
  out[0] = x[0];
  out[1] = x[1];
  c.set_output(0, c.dtype(0), out);
}

// `reduce(x, n)` pools a plane of n values; `spread(x, n, dy, dx)` adds the
// gradient dy of that pooled value to the plane's gradient dx.
template <typename Reduce, typename Spread>
OpDef global_pool_op(const char* type, Reduce reduce, Spread spread) {
  OpDef d;
  d.type = type;
  d.infer = [](InferContext& c) {
    c.require_dtype(0, {DType::kF32, DType::kF64});
    infer_global(c);
  };
  d.fast_compute = backend::pool_forward;
  d.fast_backward = backend::pool_backward;
  d.compute = [reduce](KernelContext& c) {
    const Tensor& x = c.in(0);
    int64_t planes = x.dim(0) * x.dim(1);
    int64_t plane = planes == 0 ? 0 : x.numel() / planes;
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = c.out(0).data<T>();
      for (int64_t p = 0; p < planes; ++p) py[p] = reduce(px + p * plane, plane);
    });
  };
  d.differentiable_inputs = {0};
  d.backward = [spread](BackwardContext& c) {
    if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
    const Tensor& x = c.in(0);
    int64_t planes = x.dim(0) * x.dim(1);
    int64_t plane = planes == 0 ? 0 : x.numel() / planes;
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      const T* dy = c.grad_out(0).data<T>();
      T* dx = c.grad_in(0).data<T>();
      for (int64_t p = 0; p < planes; ++p) spread(px + p * plane, plane, dy[p], dx + p * plane);
    });
  };
  return d;
}

template <typename T>
T plane_mean(const T* x, int64_t n) {
  double sum = 0;  // a 7x7 or 112x112 plane: sum in double to keep float error small
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  return static_cast<T>(n == 0 ? 0.0 : sum / static_cast<double>(n));
}

// Every element of the plane gets an equal share.
template <typename T>
void spread_mean(const T*, int64_t n, T dy, T* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] += static_cast<T>(dy / static_cast<double>(n));
}

// The position of the plane's first maximum (-1 when empty): the forward
// value, and where its gradient goes (ties to the first, as PyTorch does).
template <typename T>
int64_t plane_argmax(const T* x, int64_t n) {
  int64_t best = n == 0 ? -1 : 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

template <typename T>
T plane_max(const T* x, int64_t n) {
  int64_t at = plane_argmax(x, n);
  return at < 0 ? std::numeric_limits<T>::lowest() : x[at];
}

template <typename T>
void spread_max(const T* x, int64_t n, T dy, T* dx) {
  int64_t at = plane_argmax(x, n);
  if (at >= 0) dx[at] += dy;
}

// --- windowed pooling -----------------------------------------------------------

// The input positions one output's window covers along one axis, and how many
// of its taps fall inside the padded input (the divisor of AveragePool with
// count_include_pad=1).
struct AxisWindow {
  std::vector<int64_t> inside;
  int64_t padded_count = 0;
};

// windows[a][o]: the window of output o along axis a of a 3-D geometry.
std::vector<std::vector<AxisWindow>> axis_windows(const ConvGeometry& g) {
  std::vector<std::vector<AxisWindow>> windows(3);
  for (int a = 0; a < 3; ++a) {
    windows[a].resize(g.out[a]);
    for (int64_t o = 0; o < g.out[a]; ++o) {
      AxisWindow& w = windows[a][o];
      for (int64_t k = 0; k < g.kernel[a]; ++k) {
        int64_t pos = o * g.strides[a] + k * g.dilations[a] - g.pad_begin[a];
        if (pos >= 0 && pos < g.in[a]) w.inside.push_back(pos);
        if (pos >= -g.pad_begin[a] && pos < g.in[a] + g.pad_end[a]) ++w.padded_count;
      }
    }
  }
  return windows;
}

// Calls fn(plane, output index in plane, wd, wh, ww) for every output element.
template <typename Fn>
void for_each_window(const ConvGeometry& g, int64_t planes, Fn&& fn) {
  std::vector<std::vector<AxisWindow>> win = axis_windows(g);
  for (int64_t p = 0; p < planes; ++p) {
    int64_t o = 0;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow) fn(p, o++, win[0][od], win[1][oh], win[2][ow]);
  }
}

ConvGeometry pool_geometry(const Node& node, const Shape& x) {
  return window_geometry(node, spatial_dims(x), node.attr_ints("kernel_shape"),
                         node.attr_int("ceil_mode", 0) != 0);
}

// Attribute values that are flags in ONNX: anything but 0 or 1 is unsupported.
void check_flag(const Node& node, const char* key) {
  int64_t v = node.attr_int(key, 0);
  GRAFT_CHECK(v == 0 || v == 1, kUnsupported, "{} {} is not supported (0 or 1)", key, v);
}

void check_pool(const Node& node, int) {
  check_auto_pad(node);
  check_flag(node, "ceil_mode");
  check_flag(node, "count_include_pad");
  check_flag(node, "storage_order");
}

// Output i (the pooled values, or MaxPool's indices) has shape (N, C, out...).
void infer_pool(InferContext& c) {
  const Shape& x = c.shape(0);
  c.check(x.size() >= 3,
          "input has shape {}; {} needs N x C x D1 x ... (at least one spatial axis)", shape_str(x),
          c.node.op_type);
  c.check(c.node.has_attr("kernel_shape"), "attribute 'kernel_shape' is required");
  ConvGeometry g = pool_geometry(c.node, x);
  g.as_3d();  // rejects unsupported ranks before running
  Shape out = {x[0], x[1]};
  out.insert(out.end(), g.out.begin(), g.out.end());
  c.set_output(0, c.dtype(0), out);
  if (c.wants_output(1)) c.set_output(1, DType::kI64, out);
}

// Calls fn(flat position in the input plane) for every input element of a window.
template <typename Fn>
void for_each_inside(const ConvGeometry& g, const AxisWindow& wd, const AxisWindow& wh,
                     const AxisWindow& ww, Fn&& fn) {
  for (int64_t id : wd.inside)
    for (int64_t ih : wh.inside)
      for (int64_t iw : ww.inside) fn((id * g.in[1] + ih) * g.in[2] + iw);
}

// AveragePool's divisor: the window's taps inside the padded input
// (count_include_pad=1) or inside the input itself.
int64_t window_count(const AxisWindow& wd, const AxisWindow& wh, const AxisWindow& ww,
                     bool include_pad) {
  if (include_pad) return wd.padded_count * wh.padded_count * ww.padded_count;
  return static_cast<int64_t>(wd.inside.size() * wh.inside.size() * ww.inside.size());
}

template <typename T>
void average_pool(const T* x, T* y, const ConvGeometry& g, int64_t planes, bool include_pad) {
  int64_t in_plane = shape_numel(g.in), out_plane = shape_numel(g.out);
  for_each_window(
      g, planes,
      [&](int64_t p, int64_t o, const AxisWindow& wd, const AxisWindow& wh, const AxisWindow& ww) {
        const T* xp = x + p * in_plane;
        double sum = 0;
        for_each_inside(g, wd, wh, ww, [&](int64_t at) { sum += xp[at]; });
        int64_t count = window_count(wd, wh, ww, include_pad);
        y[p * out_plane + o] = static_cast<T>(count == 0 ? 0.0 : sum / static_cast<double>(count));
      });
}

// Each window element receives dy / count of every window it is in.
template <typename T>
void average_pool_backward(const T* dy, T* dx, const ConvGeometry& g, int64_t planes,
                           bool include_pad) {
  int64_t in_plane = shape_numel(g.in), out_plane = shape_numel(g.out);
  for_each_window(
      g, planes,
      [&](int64_t p, int64_t o, const AxisWindow& wd, const AxisWindow& wh, const AxisWindow& ww) {
        int64_t count = window_count(wd, wh, ww, include_pad);
        if (count == 0) return;
        T share = static_cast<T>(dy[p * out_plane + o] / static_cast<double>(count));
        for_each_inside(g, wd, wh, ww, [&](int64_t at) { dx[p * in_plane + at] += share; });
      });
}

// The flat position in the plane of a window's first maximum in window
// order (-1 for a window wholly in the padding). The forward's value and
// index, and where the backward sends the gradient: ties go to the first,
// as in PyTorch.
template <typename T>
int64_t window_argmax(const T* xp, const ConvGeometry& g, const AxisWindow& wd,
                      const AxisWindow& wh, const AxisWindow& ww) {
  int64_t best = -1;
  for_each_inside(g, wd, wh, ww, [&](int64_t at) {
    if (best < 0 || xp[at] > xp[best]) best = at;
  });
  return best;
}

// `indices` (optional) receives each maximum's flat position in x, the
// spatial part row-major, or column-major when storage_order=1.
template <typename T>
void max_pool(const T* x, T* y, int64_t* indices, const ConvGeometry& g, int64_t planes,
              bool column_major) {
  int64_t in_plane = shape_numel(g.in), out_plane = shape_numel(g.out);
  for_each_window(
      g, planes,
      [&](int64_t p, int64_t o, const AxisWindow& wd, const AxisWindow& wh, const AxisWindow& ww) {
        const T* xp = x + p * in_plane;
        int64_t at = window_argmax(xp, g, wd, wh, ww);
        y[p * out_plane + o] = at < 0 ? std::numeric_limits<T>::lowest() : xp[at];
        if (!indices) return;
        if (at < 0) at = 0;
        if (column_major) {
          int64_t id = at / (g.in[1] * g.in[2]), ih = at / g.in[2] % g.in[1], iw = at % g.in[2];
          at = id + ih * g.in[0] + iw * g.in[0] * g.in[1];
        }
        indices[p * out_plane + o] = p * in_plane + at;
      });
}

// The gradient of each output goes to its window's maximum.
template <typename T>
void max_pool_backward(const T* x, const T* dy, T* dx, const ConvGeometry& g, int64_t planes) {
  int64_t in_plane = shape_numel(g.in), out_plane = shape_numel(g.out);
  for_each_window(
      g, planes,
      [&](int64_t p, int64_t o, const AxisWindow& wd, const AxisWindow& wh, const AxisWindow& ww) {
        int64_t at = window_argmax(x + p * in_plane, g, wd, wh, ww);
        if (at >= 0) dx[p * in_plane + at] += dy[p * out_plane + o];
      });
}

OpDef average_pool_op() {
  OpDef d;
  d.type = "AveragePool";
  d.attributes = {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                  "pads",     "strides"};
  d.check = check_pool;
  d.infer = [](InferContext& c) {
    c.require_dtype(0, {DType::kF32, DType::kF64});
    infer_pool(c);
  };
  d.fast_compute = backend::pool_forward;
  d.fast_backward = backend::pool_backward;
  d.compute = [](KernelContext& c) {
    const Tensor& x = c.in(0);
    ConvGeometry g = pool_geometry(c.node, x.shape()).as_3d();
    bool include_pad = c.node.attr_int("count_include_pad", 0) != 0;
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      average_pool(x.data<T>(), c.out(0).data<T>(), g, x.dim(0) * x.dim(1), include_pad);
    });
  };
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
    const Tensor& x = c.in(0);
    ConvGeometry g = pool_geometry(c.node, x.shape()).as_3d();
    bool include_pad = c.node.attr_int("count_include_pad", 0) != 0;
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      average_pool_backward(c.grad_out(0).data<T>(), c.grad_in(0).data<T>(), g, x.dim(0) * x.dim(1),
                            include_pad);
    });
  };
  return d;
}

OpDef max_pool_op() {
  OpDef d;
  d.type = "MaxPool";
  d.max_outputs = 2;
  d.attributes = {"auto_pad", "ceil_mode",     "dilations", "kernel_shape",
                  "pads",     "storage_order", "strides"};
  d.check = check_pool;
  d.infer = [](InferContext& c) {
    c.require_dtype(0, {DType::kF32, DType::kF64, DType::kI8, DType::kU8});
    infer_pool(c);
  };
  d.fast_compute = backend::pool_forward;
  d.fast_backward = backend::pool_backward;
  d.compute = [](KernelContext& c) {
    const Tensor& x = c.in(0);
    ConvGeometry g = pool_geometry(c.node, x.shape()).as_3d();
    bool column_major = c.node.attr_int("storage_order", 0) != 0;
    int64_t* indices = c.outputs.size() > 1 && c.outputs[1] ? c.out(1).data<int64_t>() : nullptr;
    visit_numeric(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      max_pool(x.data<T>(), c.out(0).data<T>(), indices, g, x.dim(0) * x.dim(1), column_major);
    });
  };
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.has_grad_output(0) || !c.wants_grad(0)) return;  // Indices carry no gradient
    const Tensor& x = c.in(0);
    ConvGeometry g = pool_geometry(c.node, x.shape()).as_3d();
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      max_pool_backward(x.data<T>(), c.grad_out(0).data<T>(), c.grad_in(0).data<T>(), g,
                        x.dim(0) * x.dim(1));
    });
  };
  return d;
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  r.add(global_pool_op(
      "GlobalAveragePool", [](auto* x, int64_t n) { return plane_mean(x, n); },
      [](auto* x, int64_t n, auto dy, auto* dx) { spread_mean(x, n, dy, dx); }));
  r.add(global_pool_op(
      "GlobalMaxPool", [](auto* x, int64_t n) { return plane_max(x, n); },
      [](auto* x, int64_t n, auto dy, auto* dx) { spread_max(x, n, dy, dx); }));
  r.add(average_pool_op());
  r.add(max_pool_op());
}

}  // namespace graft::ops
