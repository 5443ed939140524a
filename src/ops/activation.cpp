// Activations and other one-input functions: the element-wise ones (Relu,
// Sigmoid, Exp, ...), PRelu, Clip, Softmax and LogSoftmax, and the ops that
// pass their input through at inference (Dropout, Identity).
//
// The gradient rules read only the forward inputs (and Dropout's seed) and
// recompute whatever else they need, so the executor does not have to keep
// these ops' outputs for the backward pass. They run in float32 and float64.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <optional>
#include <random>

#include "backend/backend.h"
#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

// Opset 1 let many ops carry `consumed_inputs`, a memory-reuse hint for the
// runtime of that time; it does not change results, so it is accepted and ignored.
constexpr const char* kConsumedInputs = "consumed_inputs";

void copy_bytes(const Tensor& from, Tensor& to) {
  GRAFT_ASSERT(from.nbytes() == to.nbytes());
  if (from.nbytes() > 0) std::memcpy(to.raw(), from.raw(), from.nbytes());
}

// Runs `kernel` with float16 inputs and outputs widened to float32. The
// kernels below are written once for every numeric type; float16 is only a
// storage format here, and rounding once at the end is what a float16 kernel
// with float32 arithmetic does.
void compute_widening_f16(KernelContext& c, const std::function<void(KernelContext&)>& kernel) {
  bool any_f16 = false;
  for (const Tensor* t : c.inputs) any_f16 = any_f16 || (t && t->dtype() == DType::kF16);
  if (!any_f16) return kernel(c);

  std::vector<Tensor> wide_in(c.inputs.size());
  std::vector<const Tensor*> in = c.inputs;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i] || in[i]->dtype() != DType::kF16) continue;
    wide_in[i] = in[i]->cast(DType::kF32);
    in[i] = &wide_in[i];
  }
  std::vector<Tensor> wide_out(c.outputs.size());
  std::vector<Tensor*> out = c.outputs;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i] || out[i]->dtype() != DType::kF16) continue;
    wide_out[i] = Tensor(DType::kF32, out[i]->shape());
    out[i] = &wide_out[i];
  }
  KernelContext wide{c.node, c.opset, in, out, c.training, c.seed};
  kernel(wide);
  for (size_t i = 0; i < out.size(); ++i)
    if (wide_out[i].defined()) copy_bytes(wide_out[i].cast(DType::kF16), *c.outputs[i]);
}

// kUnsupported unless input i is floating point, or also a signed integer
// when `integers` (the ops whose ONNX definition allows them).
void require_float(const InferContext& c, int i, bool integers) {
  if (integers)
    c.require_dtype(i,
                    {DType::kF32, DType::kF64, DType::kF16, DType::kI64, DType::kI32, DType::kI8});
  else
    c.require_dtype(i, {DType::kF32, DType::kF64, DType::kF16});
}

// y[i] = f(x[i]); f is a generic lambda, called with the element type.
template <typename F>
void map_elements(const Tensor& x, Tensor& y, F f) {
  visit_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<T>(f(px[i]));
  });
}

// dx[i] = f'(x[i]) * dy[i], with f' from deriv (a function of double).
template <typename Deriv>
void unary_backward(BackwardContext& c, Deriv deriv) {
  if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
  visit_float(c.in(0).dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = c.in(0).data<T>();
    const T* dy = c.grad_out(0).data<T>();
    T* dx = c.grad_in(0).data<T>();
    for (int64_t i = 0; i < c.in(0).numel(); ++i)
      dx[i] = static_cast<T>(deriv(static_cast<double>(x[i])) * dy[i]);
  });
}

// An element-wise op. make(node) returns the function applied to each
// element and make_deriv(node) its derivative, so that attributes are read
// once per run, not per element.
template <typename Make, typename MakeDeriv>
OpDef unary_op(const char* type, std::vector<std::string> attributes, bool integers, Make make,
               MakeDeriv make_deriv) {
  OpDef d;
  d.type = type;
  d.attributes = std::move(attributes);
  d.infer = [integers](InferContext& c) {
    require_float(c, 0, integers);
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.fast_compute = backend::activation_forward;
  d.compute = [make](KernelContext& c) {
    compute_widening_f16(c,
                         [&](KernelContext& w) { map_elements(w.in(0), w.out(0), make(w.node)); });
  };
  d.differentiable_inputs = {0};
  d.fast_backward = backend::activation_backward;
  d.backward = [make_deriv](BackwardContext& c) {
    unary_backward(c, make_deriv(c.node));
  };
  return d;
}

// An element-wise op without attributes other than the legacy consumed_inputs.
template <typename F, typename Deriv>
OpDef simple_unary_op(const char* type, F f, Deriv deriv) {
  return unary_op(
      type, {kConsumedInputs}, false, [f](const Node&) { return f; },
      [deriv](const Node&) { return deriv; });
}

template <typename T>
T hard_sigmoid(T x, double alpha, double beta) {
  return static_cast<T>(std::clamp(alpha * x + beta, 0.0, 1.0));
}

// The derivative of hard_sigmoid: alpha where alpha * x + beta is strictly
// inside (0, 1), else 0. At the two corners, which have no derivative, this
// takes the clamped side (PyTorch's HardSwish takes the sloped side at +-3).
double hard_sigmoid_slope(double x, double alpha, double beta) {
  double v = alpha * x + beta;
  return v > 0 && v < 1 ? alpha : 0;
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// --- PRelu -----------------------------------------------------------------

// Before opset 7, a 1-D slope with one value per channel applies along axis 1
// (as PyTorch exports nn.PReLU), not numpy-style along the last axis.
Shape prelu_slope_shape(int opset, const Shape& x, const Shape& slope) {
  if (opset >= 7 || slope.size() != 1 || x.size() < 2 || slope[0] == 1 || slope[0] != x[1])
    return slope;
  Shape s(x.size() - 1, 1);
  s[0] = slope[0];
  return s;
}

// At x = 0 the slope side is taken, as PyTorch does. A slope element shared
// by several inputs (broadcast) sums their gradients.
void prelu_backward(BackwardContext& c) {
  if (!c.has_grad_output(0)) return;
  const Tensor& x = c.in(0);
  Shape slope_shape = prelu_slope_shape(c.opset, x.shape(), c.in(1).shape());
  std::vector<int64_t> at = broadcast_index_map(slope_shape, x.shape());
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* slope = c.in(1).data<T>();
    const T* dy = c.grad_out(0).data<T>();
    T* dx = c.wants_grad(0) ? c.grad_in(0).data<T>() : nullptr;
    T* dslope = c.wants_grad(1) ? c.grad_in(1).data<T>() : nullptr;
    for (int64_t i = 0; i < x.numel(); ++i) {
      bool positive = px[i] > 0;
      if (dx) dx[i] = positive ? dy[i] : static_cast<T>(slope[at[i]] * dy[i]);
      if (dslope && !positive) dslope[at[i]] += px[i] * dy[i];
    }
  });
}

OpDef prelu_op() {
  OpDef d;
  d.type = "PRelu";
  d.min_inputs = d.max_inputs = 2;
  d.attributes = {kConsumedInputs};
  d.infer = [](InferContext& c) {
    require_float(c, 0, true);
    c.check(c.dtype(1) == c.dtype(0), "slope has dtype {}, the input {}", dtype_name(c.dtype(1)),
            dtype_name(c.dtype(0)));
    Shape slope = prelu_slope_shape(c.opset, c.shape(0), c.shape(1));
    c.check(broadcasts_to(slope, c.shape(0)),
            "slope of shape {} does not broadcast to the input shape {}", shape_str(c.shape(1)),
            shape_str(c.shape(0)));
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.compute = [](KernelContext& c) {
    compute_widening_f16(c, [](KernelContext& w) {
      const Tensor& x = w.in(0);
      Shape slope_shape = prelu_slope_shape(w.opset, x.shape(), w.in(1).shape());
      std::vector<int64_t> at = broadcast_index_map(slope_shape, x.shape());
      visit_numeric(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        const T* slope = w.in(1).data<T>();
        T* py = w.out(0).data<T>();
        for (int64_t i = 0; i < x.numel(); ++i)
          py[i] = px[i] < 0 ? static_cast<T>(slope[at[i]] * px[i]) : px[i];
      });
    });
  };
  d.differentiable_inputs = {0, 1};
  d.backward = prelu_backward;
  return d;
}

// --- Clip ------------------------------------------------------------------

// The bounds come from attributes before opset 11 and from optional scalar
// inputs after (`inputs`: the node's, nullptr or missing when absent); a
// missing bound does not limit.
template <typename T>
std::pair<T, T> clip_bounds(const Node& node, int opset, const std::vector<const Tensor*>& inputs) {
  const Tensor* min_input = inputs.size() > 1 ? inputs[1] : nullptr;
  const Tensor* max_input = inputs.size() > 2 ? inputs[2] : nullptr;
  T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
  if (opset < 11) {
    if (node.has_attr("min")) lo = static_cast<T>(node.attr_float("min", 0));
    if (node.has_attr("max")) hi = static_cast<T>(node.attr_float("max", 0));
  } else {
    if (min_input) lo = min_input->data<T>()[0];
    if (max_input) hi = max_input->data<T>()[0];
  }
  return {lo, hi};
}

// The gradient passes where the input is within the bounds, bounds included
// (as PyTorch's clamp); where it was clipped the output does not depend on it.
// When lo > hi the output is the constant hi and nothing passes.
void clip_backward(BackwardContext& c) {
  if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
  visit_float(c.in(0).dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto [lo, hi] = clip_bounds<T>(c.node, c.opset, c.inputs);
    const T* x = c.in(0).data<T>();
    const T* dy = c.grad_out(0).data<T>();
    T* dx = c.grad_in(0).data<T>();
    for (int64_t i = 0; i < c.in(0).numel(); ++i) dx[i] = lo <= x[i] && x[i] <= hi ? dy[i] : T{0};
  });
}

void check_clip_bound(const InferContext& c, int i, const char* what) {
  if (!c.has_input(i)) return;
  c.check(c.dtype(i) == c.dtype(0), "{} has dtype {}, the input {}", what, dtype_name(c.dtype(i)),
          dtype_name(c.dtype(0)));
  c.check(shape_numel(c.shape(i)) == 1, "{} must be a single value, got shape {}", what,
          shape_str(c.shape(i)));
}

OpDef clip_op() {
  OpDef d;
  d.type = "Clip";
  d.max_inputs = 3;
  d.attributes = {"min", "max", kConsumedInputs};
  d.infer = [](InferContext& c) {
    require_float(c, 0, c.opset >= 12);
    c.check(c.opset >= 11 || c.num_inputs() == 1, "takes min and max as inputs only from opset 11");
    check_clip_bound(c, 1, "min");
    check_clip_bound(c, 2, "max");
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.fast_compute = [](KernelContext& c) {
    if (c.in(0).dtype() != DType::kF32) return false;
    auto [lo, hi] = clip_bounds<float>(c.node, c.opset, c.inputs);
    return backend::clip_forward(c, lo, hi);
  };
  d.fast_backward = [](BackwardContext& c) {
    if (c.in(0).dtype() != DType::kF32) return false;
    auto [lo, hi] = clip_bounds<float>(c.node, c.opset, c.inputs);
    return backend::clip_backward(c, lo, hi);
  };
  d.compute = [](KernelContext& c) {
    compute_widening_f16(c, [](KernelContext& w) {
      visit_numeric(w.in(0).dtype(), [&](auto tag) {
        using T = decltype(tag);
        auto [lo, hi] = clip_bounds<T>(w.node, w.opset, w.inputs);
        const T* x = w.in(0).data<T>();
        T* y = w.out(0).data<T>();
        // min(max(x, lo), hi): when lo > hi every value becomes hi, as ONNX specifies.
        for (int64_t i = 0; i < w.in(0).numel(); ++i) y[i] = std::min(std::max(x[i], lo), hi);
      });
    });
  };
  // The bounds are settings, not trained values: no gradient flows to them.
  d.differentiable_inputs = {0};
  d.backward = clip_backward;
  return d;
}

// --- Softmax and LogSoftmax ------------------------------------------------

// Softmax runs along `len` elements spaced `inner` apart, `outer * inner` times.
struct SoftmaxGeometry {
  int64_t outer = 1, len = 1, inner = 1;
};

// Opset 13 normalises along one axis (default -1). Before, the input is
// coerced to 2-D at `axis` (default 1) and each row is normalised, i.e. all
// axes from `axis` on at once.
SoftmaxGeometry softmax_geometry(const Node& node, int opset, const Shape& shape) {
  int rank = static_cast<int>(shape.size());
  int axis = normalize_axis(node.attr_int("axis", opset < 13 ? 1 : -1), rank);
  SoftmaxGeometry g;
  for (int i = 0; i < rank; ++i) {
    if (i < axis)
      g.outer *= shape[i];
    else if (i == axis || opset < 13)
      g.len *= shape[i];
    else
      g.inner *= shape[i];
  }
  return g;
}

// Calls fn(start) for each line: the elements start + k * inner, k < len.
template <typename Fn>
void for_each_line(const SoftmaxGeometry& g, Fn fn) {
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) fn(o * g.len * g.inner + i);
}

// Subtracting the maximum first keeps exp() from overflowing on large inputs.
template <typename T>
void softmax_line(const T* x, T* y, int64_t len, int64_t step, bool log) {
  T max = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < len; ++k) max = std::max(max, x[k * step]);
  double sum = 0;
  for (int64_t k = 0; k < len; ++k) sum += std::exp(static_cast<double>(x[k * step] - max));
  for (int64_t k = 0; k < len; ++k) {
    double shifted = static_cast<double>(x[k * step] - max);
    y[k * step] = static_cast<T>(log ? shifted - std::log(sum) : std::exp(shifted) / sum);
  }
}

// Along each line, with y = softmax(x): dx = y * (dy - sum(dy * y)); with
// y = log softmax(x): dx = dy - exp(y) * sum(dy). y is recomputed.
template <typename T>
void softmax_line_backward(const T* y, const T* dy, T* dx, int64_t len, int64_t step, bool log) {
  double sum = 0;
  for (int64_t k = 0; k < len; ++k) sum += log ? dy[k * step] : dy[k * step] * y[k * step];
  for (int64_t k = 0; k < len; ++k) {
    double yk = y[k * step], dyk = dy[k * step];
    dx[k * step] = static_cast<T>(log ? dyk - std::exp(yk) * sum : yk * (dyk - sum));
  }
}

void softmax_backward(BackwardContext& c, bool log) {
  if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
  const Tensor& x = c.in(0);
  SoftmaxGeometry g = softmax_geometry(c.node, c.opset, x.shape());
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> y(x.numel());
    const T* px = x.data<T>();
    const T* dy = c.grad_out(0).data<T>();
    T* dx = c.grad_in(0).data<T>();
    for_each_line(g, [&](int64_t s) {
      softmax_line(px + s, y.data() + s, g.len, g.inner, log);
      softmax_line_backward(y.data() + s, dy + s, dx + s, g.len, g.inner, log);
    });
  });
}

OpDef softmax_op(const char* type, bool log) {
  OpDef d;
  d.type = type;
  d.attributes = {"axis"};
  d.infer = [](InferContext& c) {
    require_float(c, 0, false);
    softmax_geometry(c.node, c.opset, c.shape(0));  // validates the axis
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.fast_compute = [log](KernelContext& c) {
    SoftmaxGeometry g = softmax_geometry(c.node, c.opset, c.in(0).shape());
    return backend::softmax_forward(c, {g.outer, g.len, g.inner}, log);
  };
  d.fast_backward = [log](BackwardContext& c) {
    SoftmaxGeometry g = softmax_geometry(c.node, c.opset, c.in(0).shape());
    return backend::softmax_backward(c, {g.outer, g.len, g.inner}, log);
  };
  d.compute = [log](KernelContext& c) {
    compute_widening_f16(c, [log](KernelContext& w) {
      SoftmaxGeometry g = softmax_geometry(w.node, w.opset, w.in(0).shape());
      visit_float(w.in(0).dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* x = w.in(0).data<T>();
        T* y = w.out(0).data<T>();
        for_each_line(g, [&](int64_t s) { softmax_line(x + s, y + s, g.len, g.inner, log); });
      });
    });
  };
  d.differentiable_inputs = {0};
  d.backward = [log](BackwardContext& c) { softmax_backward(c, log); };
  return d;
}

// --- Dropout and Identity --------------------------------------------------

// Dropout's ratio: an attribute before opset 12, an optional input after.
// nullopt when it is an input whose value is not known.
std::optional<double> dropout_ratio(const Node& node, int opset, const Tensor* ratio_input,
                                    bool has_ratio_input) {
  if (opset < 12) return node.attr_float("ratio", 0.5f);
  if (!has_ratio_input) return 0.5;
  if (!ratio_input) return std::nullopt;
  return ratio_input->to_vector<double>().at(0);
}

// A Dropout node the model itself marks as training (training_mode input
// true) would drop with the exporter's random stream, which graft does not
// reproduce: graft decides when to train. Ratio 0 drops nothing and is fine.
void reject_training_mode(bool training, std::optional<double> ratio) {
  GRAFT_CHECK(!training || ratio == 0.0, kUnsupported, "Dropout in training mode");
}

// Which elements Dropout keeps: all at inference. When the executor trains
// this node, each is kept with probability 1 - ratio, drawn from the seed
// alone, so that a seeded run repeats exactly and the backward pass redraws
// the forward's mask.
Tensor dropout_keep(const Shape& shape, bool training, uint64_t seed, double ratio) {
  Tensor keep(DType::kBool, shape);
  bool* k = keep.data<bool>();
  std::mt19937_64 gen(seed);
  for (int64_t i = 0; i < keep.numel(); ++i)
    k[i] = !training || std::ldexp(static_cast<double>(gen() >> 11), -53) >= ratio;
  return keep;
}

// Kept elements are scaled by 1 / (1 - ratio) so the expected output is the input.
void scale_kept(const Tensor& x, const Tensor& keep, double scale, Tensor& y) {
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const bool* k = keep.data<bool>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = k[i] ? static_cast<T>(px[i] * scale) : T{0};
  });
}

void compute_dropout(KernelContext& c) {
  const Tensor* ratio_input = c.has_input(1) ? &c.in(1) : nullptr;
  double ratio = *dropout_ratio(c.node, c.opset, ratio_input, ratio_input != nullptr);
  reject_training_mode(c.has_input(2) && c.in(2).data<bool>()[0], ratio);
  GRAFT_CHECK(ratio >= 0 && ratio < 1, kInvalidArgument, "ratio {} is outside [0, 1)", ratio);
  Tensor keep = dropout_keep(c.in(0).shape(), c.training, c.seed, ratio);
  if (c.training && ratio > 0)
    compute_widening_f16(
        c, [&](KernelContext& w) { scale_kept(w.in(0), keep, 1 / (1 - ratio), w.out(0)); });
  else
    copy_bytes(c.in(0), c.out(0));
  if (c.outputs.size() > 1 && c.outputs[1]) copy_bytes(keep.cast(c.out(1).dtype()), c.out(1));
}

// y = x * keep / (1 - ratio) when training, else y = x; keep is redrawn
// from the forward's seed (the mask output may not have been requested).
void dropout_backward(BackwardContext& c) {
  if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
  const Tensor* ratio_input = c.inputs.size() > 1 ? c.inputs[1] : nullptr;
  double ratio = *dropout_ratio(c.node, c.opset, ratio_input, ratio_input != nullptr);
  if (!c.training || ratio == 0) return copy_bytes(c.grad_out(0), c.grad_in(0));
  Tensor keep = dropout_keep(c.in(0).shape(), c.training, c.seed, ratio);
  scale_kept(c.grad_out(0), keep, 1 / (1 - ratio), c.grad_in(0));
}

OpDef dropout_op() {
  OpDef d;
  d.type = "Dropout";
  d.max_inputs = 3;
  d.max_outputs = 2;
  // is_test (before opset 7) is ignored: whether graft trains or infers is
  // the executor's decision (c.training), not the exporter's.
  d.attributes = {"ratio", "is_test", "seed", kConsumedInputs};
  d.infer = [](InferContext& c) {
    c.check(c.opset >= 12 || c.num_inputs() == 1,
            "takes ratio and training_mode as inputs only from opset 12");
    std::optional<double> ratio = dropout_ratio(c.node, c.opset, c.constant(1), c.has_input(1));
    if (ratio) c.check(*ratio >= 0 && *ratio < 1, "ratio {} is outside [0, 1)", *ratio);
    if (c.has_input(1)) c.check(shape_numel(c.shape(1)) == 1, "ratio must be a single value");
    if (c.has_input(2)) {
      c.check(c.dtype(2) == DType::kBool && shape_numel(c.shape(2)) == 1,
              "training_mode must be a single bool");
      if (const Tensor* t = c.constant(2)) reject_training_mode(t->data<bool>()[0], ratio);
    }
    c.set_output(0, c.dtype(0), c.shape(0));
    // The mask is bool from opset 10; before, it has the input's dtype.
    if (c.wants_output(1)) c.set_output(1, c.opset < 10 ? c.dtype(0) : DType::kBool, c.shape(0));
  };
  d.compute = compute_dropout;
  d.differentiable_inputs = {0};
  d.backward = dropout_backward;
  return d;
}

OpDef identity_op() {
  OpDef d;
  d.type = "Identity";
  d.infer = [](InferContext& c) { c.set_output(0, c.dtype(0), c.shape(0)); };
  d.compute = [](KernelContext& c) { copy_bytes(c.in(0), c.out(0)); };
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (c.has_grad_output(0) && c.wants_grad(0)) copy_bytes(c.grad_out(0), c.grad_in(0));
  };
  return d;
}

}  // namespace

std::pair<float, float> clip_bounds_f32(const Node& node, int opset,
                                        const std::vector<const Tensor*>& inputs) {
  return clip_bounds<float>(node, opset, inputs);
}

void register_activation_ops(OpRegistry& r) {
  // At a kink the derivative is the one PyTorch uses: Relu'(0) = 0,
  // LeakyRelu'(0) = alpha.
  r.add(unary_op(
      "Relu", {kConsumedInputs}, true,
      [](const Node&) { return [](auto x) { return x < 0 ? decltype(x){0} : x; }; },
      [](const Node&) { return [](double x) { return x > 0 ? 1.0 : 0.0; }; }));
  r.add(unary_op(
      "LeakyRelu", {"alpha", kConsumedInputs}, false,
      [](const Node& n) {
        double alpha = n.attr_float("alpha", 0.01f);
        return [alpha](auto x) { return x < 0 ? alpha * x : x; };
      },
      [](const Node& n) {
        double alpha = n.attr_float("alpha", 0.01f);
        return [alpha](double x) { return x > 0 ? 1.0 : alpha; };
      }));
  r.add(unary_op(
      "HardSigmoid", {"alpha", "beta", kConsumedInputs}, false,
      [](const Node& n) {
        double alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
        return [alpha, beta](auto x) { return hard_sigmoid(x, alpha, beta); };
      },
      [](const Node& n) {
        double alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
        return [alpha, beta](double x) { return hard_sigmoid_slope(x, alpha, beta); };
      }));
  // x * hard_sigmoid(x): 0 below -3, 1 above 3, x / 3 + 1/2 between.
  r.add(unary_op(
      "HardSwish", {}, false,
      [](const Node&) { return [](auto x) { return x * hard_sigmoid(x, 1.0 / 6, 0.5); }; },
      [](const Node&) {
        return [](double x) {
          return hard_sigmoid(x, 1.0 / 6, 0.5) + x * hard_sigmoid_slope(x, 1.0 / 6, 0.5);
        };
      }));
  r.add(simple_unary_op(
      "Sigmoid", [](auto x) { return 1 / (1 + std::exp(-x)); },
      [](double x) { return sigmoid(x) * (1 - sigmoid(x)); }));
  r.add(simple_unary_op(
      "Tanh", [](auto x) { return std::tanh(x); },
      [](double x) { return 1 - std::tanh(x) * std::tanh(x); }));
  r.add(simple_unary_op(
      "Exp", [](auto x) { return std::exp(x); }, [](double x) { return std::exp(x); }));
  r.add(simple_unary_op(
      "Log", [](auto x) { return std::log(x); }, [](double x) { return 1 / x; }));
  r.add(simple_unary_op(
      "Sqrt", [](auto x) { return std::sqrt(x); }, [](double x) { return 0.5 / std::sqrt(x); }));
  r.add(unary_op(
      "Erf", {}, false, [](const Node&) { return [](auto x) { return std::erf(x); }; },
      [](const Node&) {
        return [](double x) { return 2 / std::sqrt(std::numbers::pi) * std::exp(-x * x); };
      }));
  r.add(prelu_op());
  r.add(clip_op());
  r.add(softmax_op("Softmax", false));
  r.add(softmax_op("LogSoftmax", true));
  r.add(dropout_op());
  r.add(identity_op());
}

}  // namespace graft::ops
