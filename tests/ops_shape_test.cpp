// Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Shape, Cast,
// Split, Slice, Gather and Pad: the cases the ONNX conformance data does not
// cover (legacy opsets, other dtypes, edge values) and every error message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

using Ints = std::vector<int64_t>;

Tensor f32(Shape shape, std::vector<float> v) { return Tensor::from_vector<float>(shape, v); }
Tensor i64(Shape shape, Ints v) { return Tensor::from_vector<int64_t>(shape, v); }
Tensor i64(Ints v) { return i64({static_cast<int64_t>(v.size())}, v); }
// 0, 1, 2, ... as float32.
Tensor iota(Shape shape) {
  std::vector<float> v(shape_numel(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return f32(shape, v);
}
std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// A OneNode whose input 0 is fed at run time and whose other inputs are
// initializers unless listed in `fed`.
OneNode node(std::string op, int opset, std::map<std::string, Attribute> attrs,
             std::vector<Tensor> inputs, int outputs = 1, std::vector<int> fed = {0}) {
  std::vector<int> constant;
  for (int i = 0; i < static_cast<int>(inputs.size()); ++i)
    if (std::find(fed.begin(), fed.end(), i) == fed.end()) constant.push_back(i);
  return OneNode{std::move(op), opset, std::move(attrs), std::move(inputs), constant, outputs};
}

void expect_fails(const OneNode& n, ErrorKind kind, const std::string& text) {
  expect_error([&] { n.run(); }, kind, text);
}

}  // namespace

// --- Flatten -----------------------------------------------------------------

TEST(Flatten, AxisEqualToRankAndIntegers) {
  Tensor y =
      node("Flatten", 13, {{"axis", int64_t{2}}}, {i64({2, 3}, {1, 2, 3, 4, 5, 6})}).run1();
  EXPECT_EQ(y.shape(), (Shape{6, 1}));
  EXPECT_EQ(y.to_vector<int64_t>(), (Ints{1, 2, 3, 4, 5, 6}));
}

TEST(Flatten, ScalarBecomesOneByOne) {
  Tensor y = node("Flatten", 13, {{"axis", int64_t{0}}}, {f32({}, {7})}).run1();
  EXPECT_EQ(y.shape(), (Shape{1, 1}));
}

TEST(Flatten, AxisOutOfRange) {
  expect_fails(node("Flatten", 13, {{"axis", int64_t{3}}}, {iota({2, 3})}),
               ErrorKind::kInvalidArgument, "Flatten axis 3 is out of range for rank 2");
}

// --- Reshape -----------------------------------------------------------------

TEST(Reshape, LegacyShapeAttribute) {
  Tensor y = node("Reshape", 4, {{"shape", Ints{3, -1}}}, {iota({2, 3})}).run1();
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(values(y), values(iota({6})));
}

TEST(Reshape, ZeroCopiesAndAllowzeroKeeps) {
  Tensor x = iota({2, 0, 3});
  EXPECT_EQ(node("Reshape", 14, {}, {x, i64({0, 3, -1})}).run1().shape(), (Shape{2, 3, 0}));
  Tensor y = node("Reshape", 14, {{"allowzero", int64_t{1}}}, {x, i64({3, 0, 2})}).run1();
  EXPECT_EQ(y.shape(), (Shape{3, 0, 2}));
}

TEST(Reshape, Int32ShapeAndBoolData) {
  Tensor x = Tensor::from_vector<bool>({4}, {true, false, false, true});
  Tensor y = node("Reshape", 13, {}, {x, Tensor::from_vector<int32_t>({2}, {2, 2})}).run1();
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_TRUE(y.data<bool>()[3]);
}

TEST(Reshape, FoldsShapeArithmeticOnLargeInputs) {
  // Shape -> Gather -> Concat -> Reshape on an input too large to be read
  // ahead: shape inference folds the chain, so the Reshape's target is known.
  Graph g;
  g.opset = 13;
  g.inputs.push_back(ValueDecl{"x", DType::kF32, std::vector<Dim>{{2, ""}, {3, ""}, {4, ""}}});
  g.initializers["zero"] = i64({}, {0});
  g.initializers["minus1"] = i64({-1});
  g.nodes.push_back(Node{"s", "Shape", {"x"}, {"shape"}, {}});
  g.nodes.push_back(Node{"g", "Gather", {"shape", "zero"}, {"batch"}, {}});
  g.nodes.push_back(Node{"u", "Unsqueeze", {"batch", "zero"}, {"batch1"}, {}});
  g.nodes.push_back(Node{"c", "Concat", {"batch1", "minus1"}, {"target"}, {{"axis", int64_t{0}}}});
  g.nodes.push_back(Node{"r", "Reshape", {"x", "target"}, {"y"}, {}});
  g.outputs.push_back(ValueDecl{"y", DType::kF32, std::nullopt});
  Session s(g);
  Tensor y = s.run({{"x", iota({2, 3, 4})}}).at("y");
  EXPECT_EQ(y.shape(), (Shape{2, 12}));
  EXPECT_TRUE(s.infos().at("target").constant.defined());
}

TEST(Reshape, ShapeOnlyKnownAtRunTimeIsUnsupported) {
  // The target comes from a rank-2 input (not a small shape-like input), so
  // it cannot be known before running.
  Graph g;
  g.opset = 13;
  g.inputs.push_back(ValueDecl{"x", DType::kF32, std::vector<Dim>{{6, ""}}});
  g.inputs.push_back(ValueDecl{"s", DType::kI64, std::vector<Dim>{{1, ""}, {2, ""}}});
  g.initializers["zero"] = i64({0});
  g.nodes.push_back(Node{"q", "Squeeze", {"s", "zero"}, {"target"}, {}});
  g.nodes.push_back(Node{"r", "Reshape", {"x", "target"}, {"y"}, {}});
  g.outputs.push_back(ValueDecl{"y", DType::kF32, std::nullopt});
  expect_error(
      [&] {
        Session(g).run({{"x", iota({6})}, {"s", i64({1, 2}, {2, 3})}});
      },
      ErrorKind::kUnsupported, "input 1 (shape) must be known before running");
}

TEST(Reshape, Errors) {
  Tensor x = iota({2, 3});
  auto reshape = [&](Tensor target, int64_t allowzero = 0) {
    return node("Reshape", 14, {{"allowzero", allowzero}}, {x, target});
  };
  expect_fails(reshape(i64({-1, -1})), ErrorKind::kInvalidArgument, "has more than one -1");
  expect_fails(reshape(i64({1, 1, 0})), ErrorKind::kInvalidArgument,
               "copies dimension 2 (a 0) of a rank-2 input");
  expect_fails(reshape(i64({-2, 3})), ErrorKind::kInvalidArgument, "negative dimension -2");
  expect_fails(reshape(i64({4, -1})), ErrorKind::kInvalidArgument, "the -1 cannot be inferred");
  expect_fails(reshape(i64({0, -1}), 1), ErrorKind::kInvalidArgument, "the -1 cannot be inferred");
  expect_fails(reshape(i64({4, 2})), ErrorKind::kInvalidArgument,
               "cannot reshape 2x3 (6 elements) to 4x2");
  expect_fails(reshape(f32({2}, {3, 2})), ErrorKind::kInvalidArgument,
               "the shape input must be int64 or int32, got float32");
  expect_fails(node("Reshape", 4, {}, {x}), ErrorKind::kInvalidArgument,
               "Reshape needs the shape attribute before opset 5");
  expect_fails(node("Reshape", 13, {}, {x}), ErrorKind::kInvalidArgument,
               "Reshape needs the shape input from opset 5");
}

// --- Squeeze / Unsqueeze -------------------------------------------------------

TEST(Squeeze, WithoutAxesDropsEverySizeOne) {
  Tensor y = node("Squeeze", 13, {}, {iota({1, 3, 1, 2})}).run1();
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(values(y), values(iota({6})));
}

TEST(Squeeze, LegacyAxesAttribute) {
  Tensor y = node("Squeeze", 11, {{"axes", Ints{-1}}}, {iota({2, 1})}).run1();
  EXPECT_EQ(y.shape(), (Shape{2}));
}

TEST(Squeeze, Errors) {
  expect_fails(node("Squeeze", 13, {}, {iota({2, 1}), i64({0})}), ErrorKind::kInvalidArgument,
               "cannot squeeze axis 0 of shape 2x1: its size is not 1");
  expect_fails(node("Squeeze", 13, {}, {iota({2, 1}), i64({2})}), ErrorKind::kInvalidArgument,
               "axis 2 is out of range for rank 2");
  expect_fails(node("Squeeze", 13, {}, {iota({1, 1}), i64({1, -1})}), ErrorKind::kInvalidArgument,
               "axis -1 is given twice");
  expect_fails(node("Squeeze", 13, {}, {iota({1}), f32({1}, {0})}), ErrorKind::kInvalidArgument,
               "axes must be int64 or int32");
}

TEST(Unsqueeze, LegacyNegativeAxesAndScalar) {
  Tensor y = node("Unsqueeze", 11, {{"axes", Ints{-1, 0}}}, {iota({3})}).run1();
  EXPECT_EQ(y.shape(), (Shape{1, 3, 1}));
  Tensor s = node("Unsqueeze", 13, {}, {f32({}, {5}), i64({0})}).run1();
  EXPECT_EQ(s.shape(), (Shape{1}));
  EXPECT_EQ(values(s), (std::vector<float>{5}));
}

TEST(Unsqueeze, Errors) {
  expect_fails(node("Unsqueeze", 13, {}, {iota({3})}), ErrorKind::kInvalidArgument,
               "Unsqueeze needs axes");
  expect_fails(node("Unsqueeze", 11, {{"axes", Ints{2}}}, {iota({3})}), ErrorKind::kInvalidArgument,
               "axis 2 is out of range for rank 2");
}

// --- Transpose -------------------------------------------------------------------

TEST(Transpose, Float16AndInt8Data) {
  Tensor h = f32({2, 3}, {1, 2, 3, 4, 5, 6}).cast(DType::kF16);
  Tensor y = node("Transpose", 13, {}, {h}).run1();
  EXPECT_EQ(y.dtype(), DType::kF16);
  EXPECT_EQ(values(y), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  Tensor b = Tensor::from_vector<int8_t>({1, 2, 2}, {1, 2, 3, 4});
  Tensor z = node("Transpose", 13, {{"perm", Ints{2, 0, 1}}}, {b}).run1();
  EXPECT_EQ(z.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(z.to_vector<int8_t>(), (std::vector<int8_t>{1, 3, 2, 4}));
}

TEST(Transpose, Errors) {
  expect_fails(node("Transpose", 13, {{"perm", Ints{1, 0}}}, {iota({2, 2, 2})}),
               ErrorKind::kInvalidArgument, "perm [1,0] does not have one entry per axis of 2x2x2");
  expect_fails(node("Transpose", 13, {{"perm", Ints{0, 0}}}, {iota({2, 2})}),
               ErrorKind::kInvalidArgument, "perm [0,0] is not a permutation of 0..1");
}

// --- Concat ----------------------------------------------------------------------

TEST(Concat, LegacyDefaultAxisIsOne) {
  Tensor y = node("Concat", 1, {}, {iota({2, 1}), f32({2, 2}, {7, 8, 9, 10})}).run1();
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(y), (std::vector<float>{0, 7, 8, 1, 9, 10}));
}

TEST(Concat, ThreeIntegerInputsWithAnEmptyOne) {
  Tensor y = node("Concat", 13, {{"axis", int64_t{0}}}, {i64({1, 2}), i64({}), i64({3})}).run1();
  EXPECT_EQ(y.to_vector<int64_t>(), (Ints{1, 2, 3}));
}

TEST(Concat, Errors) {
  Tensor a = iota({2, 2});
  expect_fails(node("Concat", 13, {}, {a, a}), ErrorKind::kInvalidArgument,
               "Concat needs the axis attribute");
  expect_fails(node("Concat", 13, {{"axis", int64_t{0}}}, {a, Tensor()}),
               ErrorKind::kInvalidArgument, "input 1 is empty");
  expect_fails(node("Concat", 13, {{"axis", int64_t{0}}}, {f32({}, {1}), f32({}, {2})}),
               ErrorKind::kInvalidArgument, "Concat cannot join scalars");
  expect_fails(node("Concat", 13, {{"axis", int64_t{0}}}, {a, i64({1, 2}, {1, 2})}),
               ErrorKind::kInvalidArgument, "input 1 is int64, input 0 is float32");
  expect_fails(node("Concat", 13, {{"axis", int64_t{0}}}, {a, iota({2, 3})}),
               ErrorKind::kInvalidArgument, "cannot concatenate 2x2 and 2x3 along axis 0");
  expect_fails(node("Concat", 13, {{"axis", int64_t{2}}}, {a, a}), ErrorKind::kInvalidArgument,
               "axis 2 is out of range for rank 2");
}

// --- Shape -----------------------------------------------------------------------

TEST(Shape, IsKnownBeforeRunning) {
  OneNode n = node("Shape", 15, {{"start", int64_t{-2}}}, {iota({2, 3, 4})});
  Session s(n.graph());
  Tensor y = s.run({{"x0", iota({2, 3, 4})}}).at("y0");
  EXPECT_EQ(y.to_vector<int64_t>(), (Ints{3, 4}));
  EXPECT_TRUE(s.infos().at("y0").constant.defined());
}

TEST(Shape, OfScalarAndEmptyRange) {
  EXPECT_EQ(node("Shape", 13, {}, {f32({}, {1})}).run1().shape(), (Shape{0}));
  Tensor y =
      node("Shape", 15, {{"start", int64_t{2}}, {"end", int64_t{1}}}, {iota({2, 3})}).run1();
  EXPECT_EQ(y.shape(), (Shape{0}));
}

// --- Cast ------------------------------------------------------------------------

TEST(Cast, FloatToIntegersTruncatesAndToBool) {
  Tensor x = f32({4}, {2.7f, -2.7f, 0.0f, 0.5f});
  Tensor y = node("Cast", 13, {{"to", int64_t{7}}}, {x}).run1();
  EXPECT_EQ(y.to_vector<int64_t>(), (Ints{2, -2, 0, 0}));
  Tensor b = node("Cast", 13, {{"to", int64_t{9}}}, {x}).run1();
  EXPECT_EQ(b.dtype(), DType::kBool);
  EXPECT_EQ(b.to_vector<int64_t>(), (Ints{1, 1, 0, 1}));
}

TEST(Cast, LegacyTypeNameAttribute) {
  Tensor y = node("Cast", 5, {{"to", std::string("INT32")}}, {f32({1}, {3.0f})}).run1();
  EXPECT_EQ(y.dtype(), DType::kI32);
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{3}));
}

TEST(Cast, DoubleToFloat16RoundsOnce) {
  // Via float, 1 + 2^-11 + 2^-40 would round to 1 + 2^-11 (a tie) and then
  // to 1; rounded once it is above the tie and goes up to 1 + 2^-10.
  double v = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  Tensor x = Tensor::from_vector<double>({3}, {v, 65520.0, -std::ldexp(1.0, -25) * 1.5});
  Tensor y = node("Cast", 13, {{"to", int64_t{10}}}, {x}).run1();
  const Half* h = y.data<Half>();
  EXPECT_EQ(h[0].bits, 0x3c01);  // 1 + 2^-10
  EXPECT_EQ(h[1].bits, 0x7c00);  // overflows to infinity
  EXPECT_EQ(h[2].bits, 0x8001);  // the smallest negative subnormal
}

TEST(Cast, Int64ToFloat16AndBack) {
  Tensor y = node("Cast", 13, {{"to", int64_t{10}}}, {i64({3}, {-3, 2049, 70000})}).run1();
  EXPECT_EQ(values(y), (std::vector<float>{-3, 2048, std::numeric_limits<float>::infinity()}));
}

TEST(Cast, Errors) {
  expect_fails(node("Cast", 13, {{"to", int64_t{8}}}, {iota({1})}), ErrorKind::kUnsupported,
               "Cast to '8' is not supported");
  expect_fails(node("Cast", 5, {{"to", std::string("STRING")}}, {iota({1})}),
               ErrorKind::kUnsupported, "Cast to 'STRING' is not supported");
  expect_fails(node("Cast", 13, {}, {iota({1})}), ErrorKind::kCorruption,
               "Cast needs the 'to' attribute");
}

// --- Split -----------------------------------------------------------------------

TEST(Split, LegacySplitAttribute) {
  auto ys =
      node("Split", 11, {{"axis", int64_t{1}}, {"split", Ints{1, 2}}}, {iota({2, 3})}, 2).run();
  EXPECT_EQ(values(ys[0]), (std::vector<float>{0, 3}));
  EXPECT_EQ(values(ys[1]), (std::vector<float>{1, 2, 4, 5}));
}

TEST(Split, SplitInputAtOpsetOneAndUnrequestedOutput) {
  OneNode n = node("Split", 1, {}, {i64({1, 2, 3}), i64({2, 1})}, 2);
  Graph g = n.graph();
  g.nodes[0].outputs[0] = "";  // only the second piece is wanted
  g.outputs.erase(g.outputs.begin());
  Tensor y = Session(g).run({{"x0", i64({1, 2, 3})}}).at("y1");
  EXPECT_EQ(y.to_vector<int64_t>(), (Ints{3}));
}

TEST(Split, Errors) {
  Tensor x = iota({5});
  expect_fails(node("Split", 13, {}, {x}, 2), ErrorKind::kInvalidArgument,
               "cannot split an axis of size 5 into 2 equal pieces");
  expect_fails(node("Split", 13, {}, {x, i64({5})}, 2), ErrorKind::kInvalidArgument,
               "split [5] gives 1 sizes for 2 outputs");
  expect_fails(node("Split", 13, {}, {x, i64({6, -1})}, 2), ErrorKind::kInvalidArgument,
               "split [6,-1] has a negative size");
  expect_fails(node("Split", 13, {}, {x, i64({2, 2})}, 2), ErrorKind::kInvalidArgument,
               "split [2,2] adds up to 4, but the axis has size 5");
  expect_fails(node("Split", 13, {}, {f32({}, {1})}, 1), ErrorKind::kInvalidArgument,
               "Split cannot split a scalar");
}

// --- Slice -----------------------------------------------------------------------

TEST(Slice, LegacyAttributesClampAndDefaultAxes) {
  OneNode n =
      node("Slice", 9, {{"starts", Ints{-100, 1}}, {"ends", Ints{100, -1}}}, {iota({2, 4})});
  Tensor y = n.run1();
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(y), (std::vector<float>{1, 2, 5, 6}));
}

TEST(Slice, NegativeStepsReverse) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  Tensor y =
      node("Slice", 13, {}, {iota({5}), i64({-1}), i64({kMin}), i64({0}), i64({-2})}).run1();
  EXPECT_EQ(values(y), (std::vector<float>{4, 2, 0}));
  // A start below the axis clamps to index 0 when stepping down (ONNX
  // clamps starts to [0, dim-1] for negative steps).
  Tensor z =
      node("Slice", 13, {}, {iota({5}), i64({-9}), i64({kMin}), i64({0}), i64({-1})}).run1();
  EXPECT_EQ(values(z), (std::vector<float>{0}));
}

TEST(Slice, Int32ArgumentsAndEmptyResult) {
  Tensor s = Tensor::from_vector<int32_t>({1}, {3});
  Tensor e = Tensor::from_vector<int32_t>({1}, {1});
  Tensor y = node("Slice", 13, {}, {iota({2, 4}), s, e, Tensor::from_vector<int32_t>({1}, {-1})})
                 .run1();
  EXPECT_EQ(y.shape(), (Shape{2, 0}));
}

TEST(Slice, Errors) {
  Tensor x = iota({3, 3});
  expect_fails(node("Slice", 13, {}, {x, i64({0}), i64({1, 2})}), ErrorKind::kInvalidArgument,
               "Slice has 1 starts, 2 ends, 1 axes and 1 steps; they must match");
  expect_fails(node("Slice", 13, {}, {x, i64({0}), i64({1}), i64({2})}),
               ErrorKind::kInvalidArgument, "Slice axis 2 is out of range for rank 2");
  expect_fails(node("Slice", 13, {}, {x, i64({0, 0}), i64({1, 1}), i64({0, -2})}),
               ErrorKind::kInvalidArgument, "Slice axis -2 is given twice");
  expect_fails(node("Slice", 13, {}, {x, i64({0}), i64({1}), i64({0}), i64({0})}),
               ErrorKind::kInvalidArgument, "Slice step 0 on axis 0 is invalid");
  expect_fails(node("Slice", 13, {}, {x}), ErrorKind::kInvalidArgument,
               "Slice needs the starts and ends inputs");
}

// --- Gather ----------------------------------------------------------------------

TEST(Gather, ScalarIndexDropsTheAxis) {
  Tensor y = node("Gather", 13, {{"axis", int64_t{1}}}, {iota({2, 3}), i64({}, {-1})}).run1();
  EXPECT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(values(y), (std::vector<float>{2, 5}));
}

TEST(Gather, Int32IndicesOnLastAxisOfIntegers) {
  Tensor x = i64({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor idx = Tensor::from_vector<int32_t>({1, 3}, {1, 0, 1});
  Tensor y = node("Gather", 13, {{"axis", int64_t{-1}}}, {x, idx}).run1();
  EXPECT_EQ(y.shape(), (Shape{2, 2, 1, 3}));
  EXPECT_EQ(y.to_vector<int64_t>(), (Ints{2, 1, 2, 4, 3, 4, 6, 5, 6, 8, 7, 8}));
}

TEST(Gather, Errors) {
  expect_fails(node("Gather", 13, {}, {iota({3}), i64({3})}, 1, {0, 1}),
               ErrorKind::kInvalidArgument, "Gather index 3 is out of range for axis 0 of size 3");
  expect_fails(node("Gather", 13, {}, {f32({}, {1}), i64({0})}), ErrorKind::kInvalidArgument,
               "Gather needs data of rank 1 or more");
  expect_fails(node("Gather", 13, {}, {iota({3}), f32({1}, {0})}), ErrorKind::kUnsupported,
               "input 1 has dtype float32");
}

// --- Pad -------------------------------------------------------------------------

TEST(Pad, ReflectBeyondTheEdgeRepeatsTheMirror) {
  // numpy: np.pad([0, 1, 2], (5, 4), 'reflect')
  Tensor y =
      node("Pad", 13, {{"mode", std::string("reflect")}}, {iota({3}), i64({5, 4})}).run1();
  EXPECT_EQ(values(y), (std::vector<float>{1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2}));
}

TEST(Pad, LegacyValueOnIntegersAndOpsetOnePaddings) {
  Tensor x = Tensor::from_vector<int32_t>({2}, {1, 2});
  Tensor y = node("Pad", 2, {{"pads", Ints{1, 2}}, {"value", 7.0f}}, {x}).run1();
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{7, 1, 2, 7, 7}));
  Tensor z =
      node("Pad", 1, {{"paddings", Ints{0, 1}}, {"mode", std::string("edge")}}, {x}).run1();
  EXPECT_EQ(z.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 2}));
}

TEST(Pad, NegativePadsCropAndConstantValueInput) {
  Tensor y = node("Pad", 13, {}, {iota({2, 3}), i64({0, -1, 1, 0}), f32({}, {9})}).run1();
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(values(y), (std::vector<float>{1, 2, 4, 5, 9, 9}));
}

TEST(Pad, Errors) {
  Tensor x = iota({2});
  expect_fails(node("Pad", 13, {{"mode", std::string("wrap")}}, {x, i64({1, 1})}),
               ErrorKind::kUnsupported, "Pad mode 'wrap' is not supported");
  expect_fails(node("Pad", 13, {}, {x}), ErrorKind::kInvalidArgument,
               "Pad needs the pads input from opset 11");
  expect_fails(node("Pad", 13, {}, {x, i64({1})}), ErrorKind::kInvalidArgument,
               "pads [1] should have 2 entries for shape 2");
  expect_fails(node("Pad", 13, {}, {x, i64({-2, -1})}), ErrorKind::kInvalidArgument,
               "pads [-2,-1] remove more than axis 0 of shape 2 holds");
  expect_fails(node("Pad", 13, {{"mode", std::string("edge")}}, {iota({0}), i64({1, 0})}),
               ErrorKind::kInvalidArgument, "cannot edge-pad the empty axis 0 of shape 0");
  expect_fails(node("Pad", 13, {}, {x, i64({1, 1}), i64({}, {0})}), ErrorKind::kInvalidArgument,
               "constant_value must be one float32 value");
  expect_fails(node("Pad", 13, {}, {x, f32({2}, {1, 1})}), ErrorKind::kInvalidArgument,
               "pads must be int64 or int32");
}
