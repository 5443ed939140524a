// Gradient rules of the activations against finite differences: every op,
// every attribute and opset form that changes the maths, PRelu's slope
// broadcasting, Clip's bounds, Softmax/LogSoftmax axes, and Dropout in both
// modes (training: the backward pass redraws the forward's mask).
#include <cmath>

#include "gradcheck.h"
#include "ops/op.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

// Moves every element closer than `gap` to a kink out to kink ± gap, so the
// central differences never straddle a point where the function has no
// derivative.
Tensor away_from(Tensor t, std::initializer_list<double> kinks, double gap = 0.05) {
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    for (double k : kinks)
      if (std::abs(p[i] - k) < gap) p[i] = p[i] < k ? k - gap : k + gap;
  return t;
}

void check(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int opset = 13,
           bool training = false, int n_outputs = 1) {
  GradCheck gc{make_node(op, static_cast<int>(inputs.size()), n_outputs, std::move(attrs)),
               std::move(inputs)};
  gc.opset = opset;
  gc.training = training;
  expect_gradients_match(gc);
}

// Inputs in [lo, hi), kept `gap` away from each kink.
Tensor input(Shape shape, double lo, double hi, std::initializer_list<double> kinks = {},
             uint32_t seed = 1) {
  return away_from(random_tensor(std::move(shape), seed, lo, hi), kinks);
}

Tensor scalar(double v) { return Tensor::scalar<double>(v); }

}  // namespace

TEST(ActivationGrad, SmoothUnaryOps) {
  for (const char* op : {"Sigmoid", "Tanh", "Exp", "Erf"}) {
    SCOPED_TRACE(op);
    check(op, {input({2, 3, 4}, -2, 2)});
  }
  // Log and Sqrt only where they are defined and smooth: positive inputs.
  for (const char* op : {"Log", "Sqrt"}) {
    SCOPED_TRACE(op);
    check(op, {input({2, 3, 4}, 0.5, 2)});
  }
  check("Sigmoid", {input({5}, -2, 2)}, {}, 6);  // the opset-6 form, same maths
}

TEST(ActivationGrad, ReluAndLeakyRelu) {
  // Inputs nudged away from the kink at 0.
  check("Relu", {input({2, 3, 4}, -1, 1, {0})});
  check("LeakyRelu", {input({2, 3, 4}, -1, 1, {0})});  // default alpha 0.01
  check("LeakyRelu", {input({2, 3, 4}, -1, 1, {0})}, {{"alpha", 0.3f}});
}

TEST(ActivationGrad, HardSigmoidAndHardSwish) {
  // Default alpha 0.2, beta 0.5: kinks where 0.2x + 0.5 is 0 or 1.
  check("HardSigmoid", {input({4, 6}, -4, 4, {-2.5, 2.5})});
  // alpha 0.5, beta 0.6: kinks at -1.2 and 0.8.
  check("HardSigmoid", {input({4, 6}, -3, 3, {-1.2, 0.8})}, {{"alpha", 0.5f}, {"beta", 0.6f}});
  check("HardSwish", {input({4, 6}, -4, 4, {-3, 3})}, {}, 14);
}

TEST(ActivationGrad, PReluSlopeBroadcasting) {
  Tensor x = input({2, 3, 2, 2}, -1, 1, {0});
  check("PRelu", {x, random_tensor({1}, 2)});           // one shared slope
  check("PRelu", {x, random_tensor({3, 1, 1}, 2)});     // per channel
  check("PRelu", {x, random_tensor({2}, 2)});           // along the last axis
  check("PRelu", {x, random_tensor({3, 1, 2}, 2)});     // two axes
  check("PRelu", {x, random_tensor({2, 3, 2, 2}, 2)});  // one per element
  check("PRelu", {x, scalar(0.25)});                    // rank 0
  // Opset 6: a 1-D slope with one value per channel applies along axis 1;
  // from opset 7 the same slope broadcasts numpy-style, along the last axis.
  Tensor square = input({2, 3, 3}, -1, 1, {0});
  check("PRelu", {square, random_tensor({3}, 2)}, {}, 6);
  check("PRelu", {square, random_tensor({3}, 2)}, {}, 9);
  check("PRelu", {input({2, 3}, -1, 1, {0}), random_tensor({3}, 2)}, {}, 6);
}

TEST(ActivationGrad, ClipBounds) {
  // Inputs in [-2, 2) nudged away from the bounds -0.5 and 0.7.
  Tensor x = input({3, 5}, -2, 2, {-0.5, 0.7});
  // Before opset 11 the bounds are attributes.
  check("Clip", {x}, {{"min", -0.5f}, {"max", 0.7f}}, 6);
  check("Clip", {x}, {{"min", -0.5f}}, 6);
  check("Clip", {x}, {{"max", 0.7f}}, 6);
  check("Clip", {x}, {}, 6);
  // From opset 11 they are optional inputs.
  check("Clip", {x, scalar(-0.5), scalar(0.7)}, {}, 11);
  check("Clip", {x, scalar(-0.5)}, {}, 13);
  check("Clip", {x, Tensor(), scalar(0.7)}, {}, 13);
  check("Clip", {x}, {}, 13);
  // min > max: the output is the constant max, so no gradient at all.
  check("Clip", {x, scalar(0.7), scalar(-0.5)}, {}, 13);
}

TEST(ActivationGrad, SoftmaxAxesAndOpsetForms) {
  Tensor x = input({2, 3, 4}, -2, 2);
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    SCOPED_TRACE(op);
    // Before opset 13: coerced to 2-D at axis (default 1), rows normalised.
    check(op, {x}, {}, 11);
    check(op, {x}, {}, 1);
    for (int64_t axis : {0, 1, 2, -1, -2, -3}) check(op, {x}, {{"axis", axis}}, 11);
    // From opset 13: one axis (default -1), including the middle one where
    // the normalised elements are strided.
    check(op, {x}, {}, 13);
    for (int64_t axis : {0, 1, 2, -1, -2, -3}) check(op, {x}, {{"axis", axis}}, 13);
    check(op, {input({3, 5}, -2, 2)}, {{"axis", int64_t{0}}}, 13);
    check(op, {input({6}, -2, 2)}, {}, 13);
  }
}

TEST(ActivationGrad, DropoutAtInferenceIsIdentity) {
  Tensor x = input({3, 4}, -1, 1);
  check("Dropout", {x}, {{"ratio", 0.5f}}, 7);
  check("Dropout", {x}, {}, 10, false, 2);  // mask requested
  check("Dropout", {x, scalar(0.4)}, {}, 12);
  Tensor no = Tensor::scalar<bool>(false);
  check("Dropout", {x, scalar(0.4), no}, {}, 13, false, 2);
}

TEST(ActivationGrad, DropoutInTrainingUsesTheForwardsMask) {
  // The checker runs forward and backward with one seed: the differences
  // only match if the backward pass redraws exactly the forward's mask.
  Tensor x = input({4, 6}, -1, 1);
  check("Dropout", {x, scalar(0.3)}, {}, 13, true);       // mask not requested
  check("Dropout", {x, scalar(0.3)}, {}, 13, true, 2);    // mask requested
  check("Dropout", {x}, {}, 13, true);                    // default ratio 0.5
  check("Dropout", {x}, {{"ratio", 0.25f}}, 7, true);     // ratio attribute
  check("Dropout", {x}, {{"ratio", 0.25f}}, 7, true, 2);  // float mask output
  check("Dropout", {x, scalar(0.0)}, {}, 13, true);       // drops nothing
}

TEST(ActivationGrad, IdentityPassesTheGradient) {
  check("Identity", {input({2, 3}, -1, 1)});
  check("Identity", {input({2, 3}, -1, 1)}, {}, 1);
}

// --- Beyond finite differences -------------------------------------------

namespace {

struct Pass {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;  // per input; undefined where not asked for
};

// Runs the node forward with `seed`, then backward with `backward_seed` and
// the gradient `dy` flowing into output 0 (undefined: none), asking for the
// gradients of `wanted` inputs.
Pass forward_backward(const Node& node, const std::vector<Tensor>& inputs, int opset, bool training,
                      uint64_t seed, uint64_t backward_seed, const Tensor& dy,
                      std::vector<int> wanted) {
  const ops::OpDef* def = ops::registry().find(node.op_type);
  std::vector<ValueInfo> infos;
  for (const Tensor& t : inputs) infos.push_back(ValueInfo{t.dtype(), t.shape(), Tensor()});
  std::vector<const ValueInfo*> in_infos;
  for (const ValueInfo& v : infos) in_infos.push_back(&v);
  ops::InferContext ic(node, opset, in_infos);
  def->infer(ic);
  Pass r;
  for (const ValueInfo& v : ic.outputs()) r.outputs.emplace_back(v.dtype, v.shape);
  std::vector<Tensor*> out_ptrs;
  for (Tensor& t : r.outputs) out_ptrs.push_back(&t);
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(&t);
  ops::KernelContext kc{node, opset, in_ptrs, out_ptrs, training, seed};
  ops::run_compute(kc);

  r.grads.resize(inputs.size());
  std::vector<Tensor*> grad_ptrs(inputs.size(), nullptr);
  for (int i : wanted) {
    r.grads[i] = Tensor(inputs[i].dtype(), inputs[i].shape());
    grad_ptrs[i] = &r.grads[i];
  }
  std::vector<const Tensor*> outs, grad_outs(r.outputs.size(), nullptr);
  for (const Tensor& t : r.outputs) outs.push_back(&t);
  if (dy.defined()) grad_outs[0] = &dy;
  ops::BackwardContext bc{node, opset,     training,  in_ptrs,
                          outs, grad_outs, grad_ptrs, backward_seed};
  ops::run_backward(bc);
  return r;
}

}  // namespace

TEST(ActivationGrad, DropoutGradientIsTheMaskOutputScaled) {
  Tensor x = input({5, 8}, -1, 1);
  Tensor dy = random_tensor({5, 8}, 9);
  Node node = make_node("Dropout", 2, 2);
  Pass r = forward_backward(node, {x, scalar(0.3)}, 13, true, 42, 42, dy, {0});
  const bool* keep = r.outputs[1].data<bool>();
  int kept = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    double expected = keep[i] ? dy.data<double>()[i] / 0.7 : 0.0;
    EXPECT_NEAR(r.grads[0].data<double>()[i], expected, 1e-12) << i;
    kept += keep[i];
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, x.numel());
  // Another step's seed draws another mask.
  Pass other = forward_backward(node, {x, scalar(0.3)}, 13, true, 42, 43, dy, {0});
  EXPECT_NE(other.grads[0].to_vector<double>(), r.grads[0].to_vector<double>());
}

TEST(ActivationGrad, NoIncomingGradientMeansZeroAndUnwantedInputsAreLeft) {
  Tensor x = input({2, 3}, -1, 1, {0});
  Tensor slope = random_tensor({3}, 2);
  Node node = make_node("PRelu", 2);
  // No gradient reaches the output: both gradients stay zero.
  Pass none = forward_backward(node, {x, slope}, 13, false, 0, 0, Tensor(), {0, 1});
  for (const Tensor& g : none.grads)
    for (double v : g.to_vector<double>()) EXPECT_EQ(v, 0.0);
  // Only the slope's gradient asked for.
  Tensor dy = random_tensor({2, 3}, 3);
  Pass slope_only = forward_backward(node, {x, slope}, 13, false, 0, 0, dy, {1});
  Pass both = forward_backward(node, {x, slope}, 13, false, 0, 0, dy, {0, 1});
  EXPECT_FALSE(slope_only.grads[0].defined());
  EXPECT_EQ(slope_only.grads[1].to_vector<double>(), both.grads[1].to_vector<double>());
}

TEST(ActivationGrad, RulesRunInFloat32) {
  // The trainer runs in float32: each rule must give the float64 answer to
  // float32 precision.
  struct Case {
    std::string op;
    std::vector<Tensor> inputs;
    Attrs attrs;
    int opset;
    bool training;
  };
  Tensor x = input({2, 3, 4}, -2, 2, {0, -0.5, 0.7, -2.5, 2.5, -3, 3});
  Tensor positive = input({2, 3, 4}, 0.5, 2);
  std::vector<Case> cases;
  auto add = [&](std::string op, std::vector<Tensor> inputs, Attrs attrs = {}, int opset = 13,
                 bool training = false) {
    cases.push_back({std::move(op), std::move(inputs), std::move(attrs), opset, training});
  };
  for (const char* op : {"Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Exp",
                         "Erf", "Softmax", "LogSoftmax", "Identity"})
    add(op, {x}, {}, op == std::string("HardSwish") ? 14 : 13);
  add("Log", {positive});
  add("Sqrt", {positive});
  add("PRelu", {x, random_tensor({3, 1}, 2)});
  add("Clip", {x, scalar(-0.5), scalar(0.7)});
  add("Softmax", {x}, {{"axis", int64_t{1}}}, 11);
  add("Dropout", {x, scalar(0.3)}, {}, 13, true);
  Tensor dy = random_tensor({2, 3, 4}, 5);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    Node node = make_node(c.op, static_cast<int>(c.inputs.size()), 1, c.attrs);
    std::vector<int> wanted = ops::registry().find(c.op)->differentiable_inputs;
    std::vector<Tensor> narrow;
    for (const Tensor& t : c.inputs) narrow.push_back(t.cast(DType::kF32));
    Pass wide = forward_backward(node, c.inputs, c.opset, c.training, 7, 7, dy, wanted);
    Pass f32 =
        forward_backward(node, narrow, c.opset, c.training, 7, 7, dy.cast(DType::kF32), wanted);
    for (int i : wanted) {
      ASSERT_EQ(f32.grads[i].dtype(), DType::kF32);
      std::vector<double> a = f32.grads[i].to_vector<double>(),
                          b = wide.grads[i].to_vector<double>();
      for (size_t k = 0; k < a.size(); ++k)
        EXPECT_NEAR(a[k], b[k], 1e-5 * std::max(1.0, std::abs(b[k])));
    }
  }
}
