// Gradient rules of the data-movement ops against finite differences:
// Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice,
// Gather, Pad and Cast, in every attribute and opset form that moves
// elements differently. These ops are linear, so no input needs nudging.
// Split with pieces no gradient reaches, and Cast between float types
// other than float64, are checked by hand.
#include <cstdint>

#include "gradcheck.h"
#include "ops/op.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

void check(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int opset = 13,
           int n_outputs = 1) {
  GradCheck gc{make_node(op, static_cast<int>(inputs.size()), n_outputs, std::move(attrs)),
               std::move(inputs)};
  gc.opset = opset;
  expect_gradients_match(gc);
}

Tensor ints(Ints v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); }

Tensor x(Shape shape, uint32_t seed = 1) { return random_tensor(std::move(shape), seed); }

// Runs `op`'s backward rule on one node with the given forward inputs and
// output gradients (undefined: none reaches that output); returns the
// gradient of input 0.
Tensor backward_of(const Node& node, const std::vector<Tensor>& inputs,
                   const std::vector<Tensor>& grad_outputs, int opset = 13) {
  Tensor grad(inputs[0].dtype(), inputs[0].shape());
  std::vector<const Tensor*> in_ptrs, out_ptrs(grad_outputs.size(), nullptr), g_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(&t);
  for (const Tensor& t : grad_outputs) g_ptrs.push_back(t.defined() ? &t : nullptr);
  std::vector<Tensor*> grad_ptrs(inputs.size(), nullptr);
  grad_ptrs[0] = &grad;
  ops::BackwardContext bc{node, opset, false, in_ptrs, out_ptrs, g_ptrs, grad_ptrs};
  ops::run_backward(bc);
  return grad;
}

}  // namespace

TEST(ShapeGrad, FlattenEveryAxis) {
  for (int64_t axis : {0, 1, 2, 3, -1, -3}) {
    SCOPED_TRACE(axis);
    check("Flatten", {x({2, 3, 2})}, {{"axis", axis}});
  }
  check("Flatten", {x({2, 3, 2})}, {}, 1);  // default axis 1, opset 1
}

TEST(ShapeGrad, ReshapeInputAndAttributeForms) {
  check("Reshape", {x({2, 3, 4}), ints({4, -1})});
  check("Reshape", {x({2, 3, 4}), ints({0, 4, 3})});  // 0 copies the input's dimension
  check("Reshape", {x({2, 3, 4}), ints({24})});
  check("Reshape", {x({2, 3, 4}), ints({2, 0, 2, 2})}, {{"allowzero", int64_t{0}}}, 14);
  check("Reshape", {x({2, 3, 4})}, {{"shape", Ints{6, -1}}}, 1);  // before opset 5
}

TEST(ShapeGrad, SqueezeAndUnsqueeze) {
  Tensor t = x({1, 3, 1, 2});
  check("Squeeze", {t});                        // every size-1 axis
  check("Squeeze", {t, ints({0})});             // axes input (opset 13)
  check("Squeeze", {t, ints({-2, 0})});         // negative axes
  check("Squeeze", {t}, {{"axes", Ints{2}}}, 11);  // attribute form
  check("Unsqueeze", {x({3, 2}), ints({0, 3})});
  check("Unsqueeze", {x({3, 2}), ints({-1, 1})});
  check("Unsqueeze", {x({3, 2})}, {{"axes", Ints{1}}}, 11);
  check("Unsqueeze", {x({})}, {{"axes", Ints{0}}}, 1);  // a scalar
}

TEST(ShapeGrad, TransposeAnyPermutation) {
  check("Transpose", {x({2, 3, 4})});  // default: axes reversed
  check("Transpose", {x({2, 3, 4})}, {{"perm", Ints{1, 2, 0}}});
  check("Transpose", {x({2, 3, 4})}, {{"perm", Ints{2, 0, 1}}});
  check("Transpose", {x({2, 3, 2, 2})}, {{"perm", Ints{0, 2, 3, 1}}});
  check("Transpose", {x({4, 5})}, {{"perm", Ints{0, 1}}});  // identity
}

TEST(ShapeGrad, ConcatEveryAxis) {
  check("Concat", {x({2, 3}, 1), x({1, 3}, 2), x({3, 3}, 3)}, {{"axis", int64_t{0}}});
  check("Concat", {x({2, 3, 2}, 1), x({2, 1, 2}, 2)}, {{"axis", int64_t{1}}});
  check("Concat", {x({2, 3, 2}, 1), x({2, 3, 3}, 2)}, {{"axis", int64_t{-1}}});
  check("Concat", {x({2, 3, 2}, 1), x({2, 3, 2}, 2)}, {{"axis", int64_t{-3}}});
  check("Concat", {x({2, 0}, 1), x({2, 3}, 2)}, {{"axis", int64_t{1}}});  // an empty piece
  check("Concat", {x({2, 2}, 1)}, {{"axis", int64_t{0}}});                 // one input
  check("Concat", {x({2, 2}, 1), x({2, 3}, 2)}, {}, 1);  // opset 1: default axis 1
}

TEST(ShapeGrad, SplitEqualAndExplicit) {
  check("Split", {x({6, 2})}, {}, 13, 3);                                   // equal, axis 0
  check("Split", {x({2, 4, 2})}, {{"axis", int64_t{1}}}, 13, 2);            // equal, axis 1
  check("Split", {x({2, 5}), ints({1, 4})}, {{"axis", int64_t{-1}}}, 13, 2);  // split input
  check("Split", {x({2, 5}), ints({2, 0, 3})}, {{"axis", int64_t{1}}}, 13, 3);  // an empty piece
  check("Split", {x({3, 6})}, {{"axis", int64_t{1}}, {"split", Ints{1, 2, 3}}}, 11, 3);
}

TEST(ShapeGrad, SplitPiecesWithoutGradient) {
  // Only pieces 1 and 3 of four are used downstream: the other pieces'
  // parts of the input get zero gradient.
  Node split = make_node("Split", 1, 4, {{"axis", int64_t{1}}, {"split", Ints{1, 2, 1, 2}}});
  Tensor in = x({2, 6});
  Tensor g1 = Tensor::from_vector<double>({2, 2}, {1, 2, 3, 4});
  Tensor g3 = Tensor::from_vector<double>({2, 2}, {5, 6, 7, 8});
  Tensor grad = backward_of(split, {in}, {Tensor(), g1, Tensor(), g3}, 11);
  EXPECT_EQ(grad.to_vector<double>(), (std::vector<double>{0, 1, 2, 0, 5, 6, 0, 3, 4, 0, 7, 8}));
  // No gradient at all reaches a Split: the input's gradient is zero.
  grad = backward_of(split, {in}, {Tensor(), Tensor(), Tensor(), Tensor()}, 11);
  EXPECT_EQ(grad.to_vector<double>(), std::vector<double>(12, 0.0));
}

TEST(ShapeGrad, SliceStepsClampingAndAxes) {
  Tensor t = x({4, 5});
  check("Slice", {t, ints({1}), ints({3})});                                   // axis 0 by default
  check("Slice", {t, ints({0, 1}), ints({4, 5}), ints({0, 1}), ints({2, 2})});  // steps of 2
  check("Slice", {t, ints({-1}), ints({-100}), ints({1}), ints({-1})});         // reversed, clamped
  check("Slice", {t, ints({3, 10}), ints({0, -10}), ints({0, 1}), ints({-2, -2})});
  check("Slice", {t, ints({-3}), ints({INT64_MAX}), ints({-1})});               // end clamped
  check("Slice", {t, ints({2}), ints({2}), ints({1})});                         // empty result
  check("Slice", {x({2, 3, 4}), ints({1, 0}), ints({3, 1}), ints({-1, 0}), ints({1, 1})});
  check("Slice", {t}, {{"starts", Ints{1, -4}}, {"ends", Ints{-1, 1000}}}, 1);  // attribute form
  check("Slice", {t}, {{"starts", Ints{1}}, {"ends", Ints{4}}, {"axes", Ints{1}}}, 9);
}

TEST(ShapeGrad, GatherAccumulatesRepeatedIndices) {
  Tensor t = x({4, 3});
  check("Gather", {t, ints({0, 2, 2, 0, 2})});                            // repeats, axis 0
  check("Gather", {t, ints({-1, 1, -1})});                                // negative indices
  check("Gather", {t, ints({2, 2, -3})}, {{"axis", int64_t{1}}});
  check("Gather", {t, ints({0, -1})}, {{"axis", int64_t{-1}}});
  check("Gather", {x({2, 3, 2}), Tensor::from_vector<int64_t>({2, 2}, {1, 0, 1, 1})},
        {{"axis", int64_t{1}}});                                          // 2-D indices
  check("Gather", {t, Tensor::scalar<int64_t>(3)});                       // scalar index
  check("Gather", {t, Tensor::from_vector<int32_t>({3}, {1, 1, 1})}, {{"axis", int64_t{0}}});
}

TEST(ShapeGrad, GatherRepeatedIndicesByHand) {
  Node gather = make_node("Gather", 2, 1);
  Tensor data = x({3});
  Tensor grad = backward_of(gather, {data, ints({2, 0, 2, 2})},
                            {Tensor::from_vector<double>({4}, {1, 10, 100, 1000})});
  EXPECT_EQ(grad.to_vector<double>(), (std::vector<double>{10, 0, 1101}));
}

TEST(ShapeGrad, PadConstantReflectEdge) {
  Tensor t = x({3, 4});
  Tensor pads = ints({1, 2, 2, 1});
  check("Pad", {t, pads});                                           // constant 0
  check("Pad", {t, pads, Tensor::scalar<double>(1.5)});              // constant value
  check("Pad", {t, pads}, {{"mode", std::string("reflect")}});
  check("Pad", {t, ints({2, 3, 2, 3})}, {{"mode", std::string("reflect")}});  // both sides, deep
  check("Pad", {t, pads}, {{"mode", std::string("edge")}});
  check("Pad", {t, ints({3, 5, 4, 6})}, {{"mode", std::string("edge")}});  // wider than the axis
  check("Pad", {t, ints({-1, 1, 0, -2})});                            // negative pads crop
  check("Pad", {t, ints({-1, 1, 0, -2})}, {{"mode", std::string("reflect")}});
  check("Pad", {x({2, 1, 3}), ints({0, 1, 1, 0, 2, 2})}, {{"mode", std::string("reflect")}});
  check("Pad", {t}, {{"pads", Ints{0, 1, 2, 0}}, {"value", 2.0f}}, 2);          // attribute form
  check("Pad", {t}, {{"pads", Ints{1, 1, 1, 1}}, {"mode", std::string("edge")}}, 2);
  check("Pad", {t}, {{"paddings", Ints{1, 0, 0, 1}}, {"mode", std::string("reflect")}}, 1);
}

TEST(ShapeGrad, PadReflectFoldsBackByHand) {
  // [a b c] reflect-padded by 2 on the left is [c b a b c]: b is read twice
  // and c twice, so their gradients collect both readings.
  Node pad = make_node("Pad", 2, 1, {{"mode", std::string("reflect")}});
  Tensor grad = backward_of(pad, {x({3}), ints({2, 0})},
                            {Tensor::from_vector<double>({5}, {1, 10, 100, 1000, 10000})});
  EXPECT_EQ(grad.to_vector<double>(), (std::vector<double>{100, 1010, 10001}));
  // Edge: [a a a b c c], every padded element is a copy of the nearest edge.
  pad.attrs["mode"] = std::string("edge");
  grad = backward_of(pad, {x({3}), ints({2, 1})},
                     {Tensor::from_vector<double>({6}, {1, 10, 100, 1000, 10000, 100000})});
  EXPECT_EQ(grad.to_vector<double>(), (std::vector<double>{111, 1000, 110000}));
}

TEST(ShapeGrad, CastBetweenFloatTypes) {
  check("Cast", {x({2, 3})}, {{"to", int64_t{11}}});               // float64 to float64
  check("Cast", {x({2, 3})}, {{"to", std::string("DOUBLE")}}, 1);  // the opset-1 name form
  // The gradient arrives in the output's dtype and is cast back to the input's.
  struct Case {
    DType from, to;
    int64_t to_code;
  };
  for (Case k : {Case{DType::kF32, DType::kF64, 11}, Case{DType::kF64, DType::kF32, 1},
                 Case{DType::kF16, DType::kF32, 1}, Case{DType::kF32, DType::kF16, 10},
                 Case{DType::kF16, DType::kF64, 11}, Case{DType::kF64, DType::kF16, 10},
                 Case{DType::kF32, DType::kF32, 1}}) {
    SCOPED_TRACE(dtype_name(k.from) + std::string(" to ") + dtype_name(k.to));
    Node cast = make_node("Cast", 1, 1, {{"to", k.to_code}});
    Tensor in = Tensor::from_vector<double>({4}, {1, -2, 3, 0.5}).cast(k.from);
    // Values exact in every float type, so the expected gradient is exact.
    std::vector<double> g = {0.25, -1.5, 2048, 0.125};
    Tensor grad = backward_of(cast, {in}, {Tensor::from_vector<double>({4}, g).cast(k.to)}, 13);
    EXPECT_EQ(grad.dtype(), k.from);
    EXPECT_EQ(grad.to_vector<double>(), g);
  }
}

TEST(ShapeGrad, CastGradientRoundsIntoFloat16) {
  // float16 -> float64: the float64 gradient is rounded once, to nearest,
  // into float16 (1 + 2^-11 + 2^-40 rounds up to 1 + 2^-10).
  Node cast = make_node("Cast", 1, 1, {{"to", int64_t{11}}});
  Tensor in = Tensor::from_vector<double>({1}, {1}).cast(DType::kF16);
  double g = 1 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  Tensor grad = backward_of(cast, {in}, {Tensor::from_vector<double>({1}, {g})});
  EXPECT_EQ(grad.to_vector<double>()[0], 1 + std::ldexp(1.0, -10));
}

TEST(ShapeGrad, CastToOrFromIntegerHasNoGradient) {
  // The executor never differentiates a node without a float output, and an
  // integer value never carries a gradient; the rule refuses such a cast.
  Node to_int = make_node("Cast", 1, 1, {{"to", int64_t{7}}});
  try {
    backward_of(to_int, {x({2})}, {Tensor(DType::kI64, {2})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("Cast from float64 to int64 has no gradient"),
              std::string::npos)
        << e.what();
  }
  Node from_int = make_node("Cast", 1, 1, {{"to", int64_t{1}}});
  EXPECT_THROW(backward_of(from_int, {ints({1, 2})}, {Tensor(DType::kF32, {2})}), Error);
}

TEST(ShapeGrad, ShapeHasNoGradientRule) {
  // Shape's output is integer: no gradient exists, so it has no rule.
  const ops::OpDef* def = ops::registry().find("Shape");
  ASSERT_NE(def, nullptr);
  EXPECT_FALSE(def->backward);
  EXPECT_TRUE(def->differentiable_inputs.empty());
}

TEST(ShapeGrad, Float32Gradients) {
  // The trainer runs in float32: the same rules, spot-checked by hand.
  Tensor data = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  Node transpose = make_node("Transpose", 1, 1);
  Tensor grad = backward_of(transpose, {data}, {Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})});
  EXPECT_EQ(grad.to_vector<float>(), (std::vector<float>{1, 3, 2, 4}));
  Node gather = make_node("Gather", 2, 1);
  grad = backward_of(gather, {data, ints({1, 1})},
                     {Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})});
  EXPECT_EQ(grad.to_vector<float>(), (std::vector<float>{0, 0, 4, 6}));
  Node concat = make_node("Concat", 1, 1, {{"axis", int64_t{1}}});
  grad = backward_of(concat, {data}, {Tensor::from_vector<float>({2, 2}, {5, 6, 7, 8})});
  EXPECT_EQ(grad.to_vector<float>(), (std::vector<float>{5, 6, 7, 8}));
}
