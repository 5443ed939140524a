// Reductions over a set of axes: ReduceSum, ReduceMean, ReduceMax, and
// their gradients.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

enum class Reduction { kSum, kMean, kMax };

// The axes moved from an attribute to an optional input: at opset 13 for
// ReduceSum, at opset 18 for the others.
bool axes_is_input(const Node& node, int opset) {
  return opset >= (node.op_type == "ReduceSum" ? 13 : 18);
}

// Which dimensions are reduced. No axes means all of them, unless
// noop_with_empty_axes asks for none.
std::vector<bool> reduced_dims(const Node& node, int rank, const std::vector<int64_t>& axes) {
  if (axes.empty()) return std::vector<bool>(rank, node.attr_int("noop_with_empty_axes", 0) == 0);
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) {
    int d = normalize_axis(a, rank);
    GRAFT_CHECK(!reduced[d], kInvalidArgument, "axis {} is repeated in axes", a);
    reduced[d] = true;
  }
  return reduced;
}

// The output shape with reduced dimensions kept as 1, which is also the
// shape to broadcast against the input to find each element's output slot.
Shape kept_shape(const Shape& in, const std::vector<bool>& reduced) {
  Shape s = in;
  for (size_t d = 0; d < s.size(); ++d)
    if (reduced[d]) s[d] = 1;
  return s;
}

Shape output_shape(const Node& node, const Shape& in, const std::vector<bool>& reduced) {
  if (node.attr_int("keepdims", 1) != 0) return kept_shape(in, reduced);
  Shape s;
  for (size_t d = 0; d < in.size(); ++d)
    if (!reduced[d]) s.push_back(in[d]);
  return s;
}

void check_axes_dtype(DType t) {
  GRAFT_CHECK(t == DType::kI64, kInvalidArgument, "axes must be int64, got {}", dtype_name(t));
}

// Unlike std::max, a NaN anywhere makes the maximum NaN (as numpy does).
template <typename T>
T max_keeping_nan(T best, T x) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(best) || std::isnan(x)) return std::numeric_limits<T>::quiet_NaN();
  }
  return x > best ? x : best;
}

// `slot[i]` is the output element input element i reduces into.
template <typename T>
void reduce_typed(Reduction kind, const T* x, int64_t n, const std::vector<int64_t>& slot, T* y,
                  int64_t m) {
  if (kind == Reduction::kMax) {
    // The maximum of nothing is the identity of max: -inf, or the lowest integer.
    T lowest = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                    : std::numeric_limits<T>::lowest();
    std::fill_n(y, m, lowest);
    for (int64_t i = 0; i < n; ++i) y[slot[i]] = max_keeping_nan(y[slot[i]], x[i]);
    return;
  }
  // Sums accumulate in double (floats) or int64 (integers, which then wrap
  // to T as ONNX's integer arithmetic does).
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  std::vector<Acc> sum(m, Acc{0});
  for (int64_t i = 0; i < n; ++i) sum[slot[i]] += x[i];
  int64_t count = m == 0 ? 0 : n / m;
  for (int64_t j = 0; j < m; ++j) {
    if (kind == Reduction::kSum)
      y[j] = static_cast<T>(sum[j]);
    else if constexpr (std::is_floating_point_v<T>)
      y[j] = static_cast<T>(sum[j] / count);
    else
      y[j] = static_cast<T>(count == 0 ? 0 : sum[j] / count);  // integer mean truncates
  }
}

// For each input element, the flat index of the output element it reduces
// into. `axes_input` is the optional axes input (nullptr: absent).
std::vector<int64_t> reduction_slots(const Node& node, const Tensor& x, const Tensor* axes_input) {
  std::vector<int64_t> axes =
      axes_input ? axes_input->to_vector<int64_t>() : node.attr_ints("axes");
  Shape kept = kept_shape(x.shape(), reduced_dims(node, x.rank(), axes));
  return broadcast_index_map(kept, x.shape());
}

// True for the element ReduceMax's maximum is taken from (NaN if one was).
template <typename T>
bool is_max(T x, T max) {
  return x == max || (std::isnan(x) && std::isnan(max));
}

// Sum: each input element gets its output's gradient; mean: divided by the
// count. Max: the gradient goes to one element, the first in the input (in
// row-major order) equal to the maximum, like the index torch.max(x, dim)
// returns and differentiates through; other tied elements get none
// (torch.amax would split it evenly among them).
template <typename T>
void reduce_backward_typed(Reduction kind, const T* x, int64_t n, const std::vector<int64_t>& slot,
                           const T* dy, int64_t m, T* dx) {
  if (kind == Reduction::kMax) {
    std::vector<T> max(m);
    reduce_typed(kind, x, n, slot, max.data(), m);
    std::vector<bool> taken(m, false);
    for (int64_t i = 0; i < n; ++i) {
      if (taken[slot[i]] || !is_max(x[i], max[slot[i]])) continue;
      dx[i] = dy[slot[i]];
      taken[slot[i]] = true;
    }
    return;
  }
  double scale = kind == Reduction::kMean && n > 0 ? static_cast<double>(m) / n : 1.0;
  for (int64_t i = 0; i < n; ++i) dx[i] = static_cast<T>(dy[slot[i]] * scale);
}

OpDef reduce_op(const char* type, Reduction kind) {
  OpDef d;
  d.type = type;
  d.max_inputs = 2;
  d.attributes = {"axes", "keepdims", "noop_with_empty_axes"};
  d.check = [](const Node& node, int opset) {
    if (axes_is_input(node, opset))
      GRAFT_CHECK(!node.has_attr("axes"), kCorruption,
                  "axes is an input from this opset on, not an attribute");
    else
      GRAFT_CHECK(node.inputs.size() == 1, kCorruption, "axes is an attribute before opset {}",
                  node.op_type == "ReduceSum" ? 13 : 18);
  };
  d.infer = [](InferContext& c) {
    c.require_dtype(0,
                    {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kI8, DType::kU8});
    std::vector<int64_t> axes = c.node.attr_ints("axes");
    if (c.has_input(1)) {
      check_axes_dtype(c.dtype(1));
      axes = c.require_constant(1, "axes").to_vector<int64_t>();
    }
    std::vector<bool> reduced = reduced_dims(c.node, static_cast<int>(c.shape(0).size()), axes);
    c.set_output(0, c.dtype(0), output_shape(c.node, c.shape(0), reduced));
  };
  d.compute = [kind](KernelContext& c) {
    const Tensor& x = c.in(0);
    std::vector<int64_t> slot = reduction_slots(c.node, x, c.has_input(1) ? &c.in(1) : nullptr);
    visit_numeric(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      reduce_typed(kind, x.data<T>(), x.numel(), slot, c.out(0).data<T>(), c.out(0).numel());
    });
  };
  d.differentiable_inputs = {0};
  d.backward = [kind](BackwardContext& c) {
    if (!c.has_grad_output(0) || !c.wants_grad(0)) return;
    const Tensor& x = c.in(0);
    const Tensor& dy = c.grad_out(0);
    std::vector<int64_t> slot =
        reduction_slots(c.node, x, c.inputs.size() > 1 ? c.inputs[1] : nullptr);
    visit_float(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      reduce_backward_typed(kind, x.data<T>(), x.numel(), slot, dy.data<T>(), dy.numel(),
                            c.grad_in(0).data<T>());
    });
  };
  return d;
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  r.add(reduce_op("ReduceSum", Reduction::kSum));
  r.add(reduce_op("ReduceMean", Reduction::kMean));
  r.add(reduce_op("ReduceMax", Reduction::kMax));
}

}  // namespace graft::ops
