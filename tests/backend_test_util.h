// Checks a fast (oneDNN) kernel against its op's reference kernel: runs one
// node forward and backward on each path and compares every output and
// every gradient. The backend's served_count() tells which path ran, so a
// case can also be checked to decline cleanly to the reference kernel.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "backend/backend.h"
#include "graft/backend.h"
#include "graft/graph.h"
#include "gradcheck.h"  // make_node
#include "ops/op.h"

namespace graft::test {

struct FastCase {
  Node node;
  std::vector<Tensor> inputs;  // undefined = absent
  int opset = 13;
  bool training = false;  // KernelContext/BackwardContext::training
  // Gradients to ask for, by input; empty: every differentiable input given.
  std::vector<int> wanted;
  // Outputs a gradient reaches; empty: output 0 only.
  std::vector<int> graded_outputs;
  double tolerance = 1e-4;  // on |fast - reference| / max(1, max |reference|)
  bool backward = true;     // also run the backward pass
  // Check the node as the importer does; off for nodes only the executor
  // builds (BatchNormalization with its running statistics as outputs).
  bool validate = true;
};

struct PathResult {
  std::vector<Tensor> outputs, grads;
  int64_t forward_served = 0, backward_served = 0;
};

// A float32 tensor with values uniform in [lo, hi).
inline Tensor uniform(Shape shape, uint32_t seed, float lo = -1, float hi = 1) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Outputs filled with 0xFF bytes (NaN as a float): a fast kernel that leaves
// any element unwritten fails the comparison with the reference.
inline Tensor poisoned(DType dtype, Shape shape) {
  Tensor t = Tensor::uninitialized(dtype, std::move(shape));
  std::memset(t.raw(), 0xFF, t.nbytes());
  return t;
}

inline Tensor values(Shape shape, std::vector<float> v) { return Tensor::from_vector(shape, v); }

// Sets the reference switch for a scope and restores it after.
class KernelPath {
 public:
  explicit KernelPath(bool reference) : saved_(reference_kernels()) {
    set_reference_kernels(reference);
  }
  ~KernelPath() { set_reference_kernels(saved_); }

 private:
  bool saved_;
};

inline PathResult run_path(const FastCase& fc, bool reference) {
  KernelPath path(reference);
  const ops::OpDef* def = ops::registry().find(fc.node.op_type);
  EXPECT_NE(def, nullptr);
  if (fc.validate) ops::check_node(fc.node, fc.opset);
  std::vector<ValueInfo> infos(fc.inputs.size());
  std::vector<const ValueInfo*> in_infos;
  std::vector<const Tensor*> in_ptrs;
  for (size_t i = 0; i < fc.inputs.size(); ++i) {
    const Tensor& t = fc.inputs[i];
    in_ptrs.push_back(t.defined() ? &t : nullptr);
    if (!t.defined()) {
      in_infos.push_back(nullptr);
      continue;
    }
    // Small non-float inputs (Clip bounds are float; shapes, axes) count as known.
    infos[i] = ValueInfo{t.dtype(), t.shape(), t.numel() <= 1 ? t : Tensor()};
    in_infos.push_back(&infos[i]);
  }
  ops::InferContext ic(fc.node, fc.opset, in_infos);
  def->infer(ic);

  PathResult r;
  std::vector<Tensor*> out_ptrs;
  for (size_t k = 0; k < fc.node.outputs.size(); ++k) {
    r.outputs.emplace_back();
    if (!fc.node.outputs[k].empty())
      r.outputs.back() = poisoned(ic.outputs()[k].dtype, ic.outputs()[k].shape);
  }
  for (Tensor& t : r.outputs) out_ptrs.push_back(t.defined() ? &t : nullptr);
  int64_t before = backend::served_count();
  ops::KernelContext kc{fc.node, fc.opset, in_ptrs, out_ptrs, fc.training, 0};
  ops::run_compute(kc);
  r.forward_served = backend::served_count() - before;
  if (!def->backward || !fc.backward) return r;

  // Gradients reaching the outputs: fixed random values.
  std::vector<int> graded = fc.graded_outputs.empty() ? std::vector<int>{0} : fc.graded_outputs;
  std::vector<Tensor> gouts(r.outputs.size());
  for (int k : graded) gouts[k] = uniform(r.outputs[k].shape(), 100 + k).cast(r.outputs[k].dtype());
  std::vector<int> wanted = fc.wanted;
  if (wanted.empty())
    for (int i = 0; i < static_cast<int>(fc.inputs.size()); ++i)
      if (def->differentiable(i) && fc.inputs[i].defined()) wanted.push_back(i);
  r.grads.resize(fc.inputs.size());
  std::vector<Tensor*> grad_ptrs(fc.inputs.size(), nullptr);
  for (int i : wanted) {
    r.grads[i] = poisoned(fc.inputs[i].dtype(), fc.inputs[i].shape());
    grad_ptrs[i] = &r.grads[i];
  }
  std::vector<const Tensor*> fwd_outs, gout_ptrs;
  for (const Tensor& t : r.outputs) fwd_outs.push_back(t.defined() ? &t : nullptr);
  for (const Tensor& t : gouts) gout_ptrs.push_back(t.defined() ? &t : nullptr);
  ops::BackwardContext bc{fc.node,  fc.opset,  fc.training, in_ptrs,
                          fwd_outs, gout_ptrs, grad_ptrs,   0};
  before = backend::served_count();
  ops::run_backward(bc);
  r.backward_served = backend::served_count() - before;
  return r;
}

inline void expect_close(const Tensor& fast, const Tensor& ref, double tolerance,
                         const std::string& what) {
  ASSERT_EQ(fast.defined(), ref.defined()) << what;
  if (!ref.defined()) return;
  ASSERT_EQ(fast.shape(), ref.shape()) << what;
  std::vector<double> f = fast.to_vector<double>(), r = ref.to_vector<double>();
  double scale = 1;
  for (double v : r) scale = std::max(scale, std::abs(v));
  double worst = 0;
  int64_t at = 0;
  for (size_t i = 0; i < r.size() && !std::isnan(worst); ++i) {
    double d = std::abs(f[i] - r[i]);  // NaN (an element never written) stops the search
    if (!(d <= worst)) {
      worst = d;
      at = static_cast<int64_t>(i);
    }
  }
  EXPECT_LE(worst / scale, tolerance)
      << what << ": element " << at << " fast " << f[at] << ", reference " << r[at];
}

inline void expect_same_results(const PathResult& fast, const PathResult& ref, double tolerance) {
  for (size_t k = 0; k < ref.outputs.size(); ++k)
    expect_close(fast.outputs[k], ref.outputs[k], tolerance, "output " + std::to_string(k));
  for (size_t i = 0; i < ref.grads.size(); ++i)
    expect_close(fast.grads[i], ref.grads[i], tolerance, "gradient of input " + std::to_string(i));
}

// The fast kernels serve the forward and (when `backward`) the backward
// pass, and agree with the reference kernel.
inline void expect_fast_matches_reference(const FastCase& fc, bool backward = true) {
  SCOPED_TRACE(fc.node.describe());
  PathResult ref = run_path(fc, true);
  PathResult fast = run_path(fc, false);
  EXPECT_EQ(ref.forward_served + ref.backward_served, 0) << "reference forced, yet served fast";
  EXPECT_EQ(fast.forward_served, 1) << "forward declined";
  if (backward) {
    EXPECT_EQ(fast.backward_served, 1) << "backward declined";
  }
  expect_same_results(fast, ref, fc.tolerance);
}

// Which passes the fast kernels serve; the results agree with the
// reference either way (a declined pass runs the reference kernel).
inline void expect_served(const FastCase& fc, bool forward, bool backward) {
  SCOPED_TRACE(fc.node.describe());
  PathResult ref = run_path(fc, true);
  PathResult fast = run_path(fc, false);
  EXPECT_EQ(fast.forward_served, forward ? 1 : 0);
  EXPECT_EQ(fast.backward_served, backward ? 1 : 0);
  expect_same_results(fast, ref, fc.tolerance);
}

}  // namespace graft::test
