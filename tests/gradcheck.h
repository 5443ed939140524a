// Finite-difference check of an op's gradient rule. The node runs in
// float64 (every float kernel supports it), so central differences with a
// small step are accurate to ~1e-8 and a wrong rule cannot hide in rounding.
#pragma once

#include <gtest/gtest.h>

#include <random>

#include "graft/graph.h"
#include "ops/op.h"

namespace graft::test {

struct GradCheck {
  Node node;
  std::vector<Tensor> inputs;  // float64 for differentiable inputs; undefined = absent
  int opset = 13;
  bool training = false;
  double step = 1e-6;
  double tolerance = 1e-6;     // on |analytic - numeric| / max(1, |numeric|)
};

namespace detail {

// Every forward and backward of a check uses this seed, so a random op
// (Dropout in training) draws the same mask in each.
constexpr uint64_t kSeed = 1234;

inline std::vector<Tensor> forward(const GradCheck& gc, const std::vector<Tensor>& inputs) {
  const ops::OpDef* def = ops::registry().find(gc.node.op_type);
  std::vector<ValueInfo> infos(inputs.size());
  std::vector<const ValueInfo*> in_infos;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      in_infos.push_back(nullptr);
      continue;
    }
    // Integer inputs (shapes, axes, indices) count as known ahead.
    bool known = !is_floating(inputs[i].dtype());
    infos[i] = ValueInfo{inputs[i].dtype(), inputs[i].shape(), known ? inputs[i] : Tensor()};
    in_infos.push_back(&infos[i]);
  }
  ops::InferContext ic(gc.node, gc.opset, in_infos);
  def->infer(ic);
  std::vector<Tensor> outs;
  std::vector<Tensor*> out_ptrs;
  outs.reserve(gc.node.outputs.size());
  for (size_t k = 0; k < gc.node.outputs.size(); ++k)
    outs.emplace_back(ic.outputs()[k].dtype, ic.outputs()[k].shape);
  for (Tensor& t : outs) out_ptrs.push_back(&t);
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  ops::KernelContext kc{gc.node, gc.opset, in_ptrs, out_ptrs, gc.training, detail::kSeed};
  ops::run_compute(kc);
  return outs;
}

// Σ_k <weights_k, outputs_k> over the floating outputs.
inline double project(const std::vector<Tensor>& outs, const std::vector<Tensor>& weights) {
  double s = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    if (!weights[k].defined()) continue;
    const double* o = outs[k].data<double>();
    const double* w = weights[k].data<double>();
    for (int64_t i = 0; i < outs[k].numel(); ++i) s += o[i] * w[i];
  }
  return s;
}

}  // namespace detail

// Checks d(Σ r·outputs)/d(input) from the op's backward rule against central
// differences, for every differentiable input and element.
inline void expect_gradients_match(const GradCheck& gc) {
  SCOPED_TRACE(gc.node.describe());
  const ops::OpDef* def = ops::registry().find(gc.node.op_type);
  ASSERT_NE(def, nullptr);
  ASSERT_TRUE(def->backward) << "no gradient rule";
  std::vector<Tensor> outs = detail::forward(gc, gc.inputs);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<Tensor> weights(outs.size());
  for (size_t k = 0; k < outs.size(); ++k) {
    if (outs[k].dtype() != DType::kF64) continue;
    weights[k] = Tensor(DType::kF64, outs[k].shape());
    for (int64_t i = 0; i < outs[k].numel(); ++i) weights[k].data<double>()[i] = u(rng);
  }
  std::vector<Tensor> grads(gc.inputs.size());
  std::vector<Tensor*> grad_ptrs(gc.inputs.size(), nullptr);
  for (int i = 0; i < static_cast<int>(gc.inputs.size()); ++i) {
    if (!def->differentiable(i) || !gc.inputs[i].defined()) continue;
    grads[i] = Tensor(gc.inputs[i].dtype(), gc.inputs[i].shape());
    grad_ptrs[i] = &grads[i];
  }
  std::vector<const Tensor*> in_ptrs, out_ptrs, gout_ptrs;
  for (const Tensor& t : gc.inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  for (const Tensor& t : outs) out_ptrs.push_back(&t);
  for (const Tensor& t : weights) gout_ptrs.push_back(t.defined() ? &t : nullptr);
  ops::BackwardContext bc{gc.node,  gc.opset,  gc.training, in_ptrs, out_ptrs,
                          gout_ptrs, grad_ptrs, detail::kSeed};
  ops::run_backward(bc);

  for (int i = 0; i < static_cast<int>(grad_ptrs.size()); ++i) {
    if (!grad_ptrs[i]) continue;  // not differentiable, or absent
    for (int64_t e = 0; e < gc.inputs[i].numel(); ++e) {
      std::vector<Tensor> plus = gc.inputs, minus = gc.inputs;
      plus[i] = gc.inputs[i].clone();
      minus[i] = gc.inputs[i].clone();
      plus[i].data<double>()[e] += gc.step;
      minus[i].data<double>()[e] -= gc.step;
      double numeric = (detail::project(detail::forward(gc, plus), weights) -
                        detail::project(detail::forward(gc, minus), weights)) /
                       (2 * gc.step);
      double analytic = grads[i].data<double>()[e];
      EXPECT_LE(std::abs(analytic - numeric) / std::max(1.0, std::abs(numeric)), gc.tolerance)
          << "input " << i << " element " << e << ": analytic " << analytic << ", numeric " << numeric;
    }
  }
}

// A float64 tensor of the given shape with values uniform in [lo, hi).
inline Tensor random_tensor(Shape shape, uint32_t seed, double lo = -1, double hi = 1) {
  Tensor t(DType::kF64, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = u(rng);
  return t;
}

inline Node make_node(std::string op, int n_inputs, int n_outputs = 1,
                      std::map<std::string, Attribute> attrs = {}) {
  Node n;
  n.op_type = op;
  n.name = op + "_under_test";
  for (int i = 0; i < n_inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  for (int i = 0; i < n_outputs; ++i) n.outputs.push_back("out" + std::to_string(i));
  n.attrs = std::move(attrs);
  return n;
}

}  // namespace graft::test
