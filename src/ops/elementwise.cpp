// Binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div, Pow.
#include <cmath>

#include "backend/backend.h"
#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

// Opsets before 7 broadcast only when the node says broadcast=1, aligning B
// with A at `axis` (default: B's dims are A's trailing dims).
Shape legacy_b_shape(const Node& node, int opset, const Shape& a, const Shape& b) {
  if (opset >= 7 || node.attr_int("broadcast", 0) == 0) return b;
  int64_t axis = node.attr_int("axis", static_cast<int64_t>(a.size() - b.size()));
  if (axis < 0) axis += static_cast<int64_t>(a.size());
  GRAFT_CHECK(axis >= 0 && axis + b.size() <= a.size(), kInvalidArgument,
              "legacy broadcast of {} onto {} at axis {} does not fit", shape_str(b), shape_str(a),
              axis);
  Shape out(a.size() - axis, 1);
  for (size_t i = 0; i < b.size(); ++i) out[i] = b[i];
  return out;
}

// `op(a, b)` computes an element; `deriv(a, b)` returns {d/da, d/db} of it.
template <typename Op, typename Deriv>
OpDef binary_op(const char* type, Op op, Deriv deriv) {
  OpDef d;
  d.type = type;
  d.min_inputs = d.max_inputs = 2;
  d.attributes = {"broadcast", "axis", "consumed_inputs"};
  d.infer = [](InferContext& c) {
    bool is_pow = c.node.op_type == "Pow";
    c.require_dtype(0, {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kI8, DType::kU8});
    c.require_dtype(1, {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kI8, DType::kU8});
    c.check(is_pow || c.dtype(0) == c.dtype(1), "operands have different dtypes {} and {}",
            dtype_name(c.dtype(0)), dtype_name(c.dtype(1)));
    Shape b = legacy_b_shape(c.node, c.opset, c.shape(0), c.shape(1));
    c.set_output(0, c.dtype(0), broadcast_shapes(c.shape(0), b));
  };
  d.fast_compute = backend::binary_forward;  // Add, Sub, Mul without broadcasting
  d.fast_backward = backend::binary_backward;
  d.compute = [op](KernelContext& c) {
    const Tensor& a = c.in(0);
    Tensor b = c.in(1).reshaped(legacy_b_shape(c.node, c.opset, a.shape(), c.in(1).shape()));
    Tensor& out = c.out(0);
    std::vector<int64_t> ia = broadcast_index_map(a.shape(), out.shape());
    std::vector<int64_t> ib = broadcast_index_map(b.shape(), out.shape());
    visit_numeric(a.dtype(), [&](auto ta) {
      using A = decltype(ta);
      visit_numeric(b.dtype(), [&](auto tb) {
        using B = decltype(tb);
        const A* pa = a.data<A>();
        const B* pb = b.data<B>();
        A* po = out.data<A>();
        for (int64_t k = 0; k < out.numel(); ++k) po[k] = op(pa[ia[k]], pb[ib[k]]);
      });
    });
  };
  d.differentiable_inputs = {0, 1};
  // Each output element's gradient flows back to the input elements it was
  // broadcast from, summed over the broadcast axes.
  d.backward = [deriv](BackwardContext& c) {
    const Tensor& a = c.in(0);
    // Pow's exponent may be of another dtype: compute in the base's.
    Tensor b = c.in(1).dtype() == a.dtype() ? c.in(1) : c.in(1).cast(a.dtype());
    b = b.reshaped(legacy_b_shape(c.node, c.opset, a.shape(), b.shape()));
    const Tensor& g = c.grad_out(0);
    std::vector<int64_t> ia = broadcast_index_map(a.shape(), g.shape());
    std::vector<int64_t> ib = broadcast_index_map(b.shape(), g.shape());
    visit_float(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      const T* pg = g.data<T>();
      T* ga = c.wants_grad(0) ? c.grad_in(0).data<T>() : nullptr;
      T* gb = c.wants_grad(1) ? c.grad_in(1).data<T>() : nullptr;
      for (int64_t k = 0; k < g.numel(); ++k) {
        auto [da, db] = deriv(pa[ia[k]], pb[ib[k]]);
        if (ga) ga[ia[k]] += static_cast<T>(da * pg[k]);
        if (gb) gb[ib[k]] += static_cast<T>(db * pg[k]);
      }
    });
  };
  return d;
}

template <typename A, typename B>
A power(A a, B b) {
  return static_cast<A>(std::pow(static_cast<double>(a), static_cast<double>(b)));
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  using P = std::pair<double, double>;
  r.add(binary_op(
      "Add", [](auto a, auto b) { return static_cast<decltype(a)>(a + b); },
      [](double, double) { return P{1, 1}; }));
  r.add(binary_op(
      "Sub", [](auto a, auto b) { return static_cast<decltype(a)>(a - b); },
      [](double, double) { return P{1, -1}; }));
  r.add(binary_op(
      "Mul", [](auto a, auto b) { return static_cast<decltype(a)>(a * b); },
      [](double a, double b) { return P{b, a}; }));
  r.add(binary_op(
      "Div",
      [](auto a, auto b) {
        using A = decltype(a);
        if constexpr (std::is_integral_v<A>) {
          if (b == 0) return A{0};  // integer division by zero: defined as 0 rather than a crash
        }
        return static_cast<A>(a / b);
      },
      [](double a, double b) { return P{1 / b, -a / (b * b)}; }));
  r.add(binary_op(
      "Pow", [](auto a, auto b) { return power(a, b); },
      // d/db a^b = a^b ln a, defined for a > 0; PyTorch likewise gives NaN below.
      [](double a, double b) { return P{b * std::pow(a, b - 1), std::pow(a, b) * std::log(a)}; }));
}

}  // namespace graft::ops
