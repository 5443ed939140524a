// ReduceSum, ReduceMean, ReduceMax: the cases the ONNX conformance data does
// not cover (integer dtypes, legacy opsets, empty and NaN inputs) and every
// error message.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

// Runs one reduce node on x (a graph input) and, when given, axes (an
// initializer, or a graph input when `axes_fed`).
Tensor reduce(const std::string& op, int opset, const Tensor& x,
              std::map<std::string, Attribute> attrs = {}, const Tensor& axes = Tensor(),
              bool axes_fed = false) {
  Graph g;
  g.opset = opset;
  std::vector<Dim> dims;
  for (int64_t d : x.shape()) dims.push_back(Dim{d, ""});
  g.inputs.push_back(ValueDecl{"x", x.dtype(), dims});
  Node n{"n", op, {"x"}, {"y"}, std::move(attrs)};
  TensorMap feed{{"x", x}};
  if (axes.defined()) {
    n.inputs.push_back("axes");
    if (axes_fed) {
      g.inputs.push_back(ValueDecl{"axes", axes.dtype(), std::vector<Dim>{Dim{axes.numel(), ""}}});
      feed["axes"] = axes;
    } else {
      g.initializers["axes"] = axes;
    }
  }
  g.nodes.push_back(n);
  g.outputs.push_back(ValueDecl{"y", x.dtype(), std::nullopt});
  return Session(g).run(feed).at("y");
}

Tensor axes_of(std::vector<int64_t> v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

// 2x3: [[1, 2, 3], [4, 5, 6]]
Tensor f64_2x3() { return Tensor::from_vector<double>({2, 3}, {1, 2, 3, 4, 5, 6}); }

}  // namespace

TEST(ReduceSum, Int64AlongAxis1) {
  Tensor x = Tensor::from_vector<int64_t>({2, 3}, {1, 2, 3, 4, 5, (int64_t{1} << 60)});
  Tensor y = reduce("ReduceSum", 13, x, {{"keepdims", int64_t{0}}}, axes_of({1}));
  EXPECT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{6, 9 + (int64_t{1} << 60)}));
}

TEST(ReduceSum, Opset11AxesAttribute) {
  Tensor y = reduce("ReduceSum", 11, f64_2x3(), {{"axes", std::vector<int64_t>{0}}});
  EXPECT_EQ(y.shape(), (Shape{1, 3}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{5, 7, 9}));
}

TEST(ReduceSum, NoAxesReducesEverything) {
  Tensor y = reduce("ReduceSum", 13, f64_2x3(), {{"keepdims", int64_t{0}}});
  EXPECT_EQ(y.shape(), Shape{});
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{21}));
}

TEST(ReduceSum, NoopWithEmptyAxesCopiesTheInput) {
  Tensor y = reduce("ReduceSum", 13, f64_2x3(), {{"noop_with_empty_axes", int64_t{1}}});
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.to_vector<double>(), f64_2x3().to_vector<double>());
}

TEST(ReduceSum, AxesFedAsGraphInput) {
  Tensor y = reduce("ReduceSum", 13, f64_2x3(), {}, axes_of({-1}), true);
  EXPECT_EQ(y.shape(), (Shape{2, 1}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{6, 15}));
}

TEST(ReduceSum, EmptyDimensionSumsToZero) {
  Tensor y = reduce("ReduceSum", 13, Tensor(DType::kF32, {2, 0}), {}, axes_of({1}));
  EXPECT_EQ(y.shape(), (Shape{2, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 0}));
}

TEST(ReduceSum, Uint8WrapsLikeOnnx) {
  Tensor x = Tensor::from_vector<uint8_t>({2}, {200, 100});
  EXPECT_EQ(reduce("ReduceSum", 13, x).to_vector<int64_t>(), (std::vector<int64_t>{44}));
}

TEST(ReduceMean, Float64SeveralAxesNoKeepdims) {
  Tensor x = Tensor::from_vector<double>({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor y =
      reduce("ReduceMean", 13, x, {{"axes", std::vector<int64_t>{0, 2}}, {"keepdims", int64_t{0}}});
  EXPECT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{3.5, 5.5}));
}

TEST(ReduceMean, Int32Truncates) {
  Tensor x = Tensor::from_vector<int32_t>({3}, {1, 2, 2});
  EXPECT_EQ(reduce("ReduceMean", 13, x).to_vector<int32_t>(), (std::vector<int32_t>{1}));
}

TEST(ReduceMax, Int8NegativeAxis) {
  Tensor x = Tensor::from_vector<int8_t>({2, 2}, {-128, -100, 5, -3});
  Tensor y = reduce("ReduceMax", 13, x, {{"axes", std::vector<int64_t>{-1}}});
  EXPECT_EQ(y.shape(), (Shape{2, 1}));
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{-100, 5}));
}

TEST(ReduceMax, NanPropagates) {
  Tensor x = Tensor::from_vector<float>({3}, {1, NAN, 2});
  EXPECT_TRUE(std::isnan(reduce("ReduceMax", 13, x).to_vector<float>()[0]));
}

TEST(ReduceMax, EmptyDimensionGivesMinusInfinity) {
  Tensor y =
      reduce("ReduceMax", 13, Tensor(DType::kF64, {0, 2}), {{"axes", std::vector<int64_t>{0}}});
  EXPECT_EQ(y.to_vector<double>(),
            (std::vector<double>(2, -std::numeric_limits<double>::infinity())));
}

TEST(Reduce, RepeatedAxisIsAnError) {
  expect_error(
      [] {
        reduce("ReduceMean", 13, f64_2x3(), {{"axes", std::vector<int64_t>{1, -1}}});
      },
      ErrorKind::kInvalidArgument, "axis -1 is repeated in axes");
}

TEST(Reduce, AxisOutOfRangeIsAnError) {
  expect_error([] { reduce("ReduceSum", 13, f64_2x3(), {}, axes_of({2})); },
               ErrorKind::kInvalidArgument, "axis 2 is out of range for rank 2");
}

TEST(Reduce, AxesMustBeInt64) {
  expect_error(
      [] { reduce("ReduceSum", 13, f64_2x3(), {}, Tensor::from_vector<int32_t>({1}, {0})); },
      ErrorKind::kInvalidArgument, "axes must be int64, got int32");
}

TEST(Reduce, AxesAttributeWhereItIsAnInput) {
  expect_error(
      [] {
        reduce("ReduceSum", 13, f64_2x3(), {{"axes", std::vector<int64_t>{0}}});
      },
      ErrorKind::kCorruption, "axes is an input from this opset on, not an attribute");
}

TEST(Reduce, AxesInputWhereItIsAnAttribute) {
  expect_error([] { reduce("ReduceMean", 13, f64_2x3(), {}, axes_of({0})); },
               ErrorKind::kCorruption, "axes is an attribute before opset 18");
}

TEST(Reduce, Float16IsUnsupported) {
  expect_error([] { reduce("ReduceMax", 13, Tensor(DType::kF16, {2})); }, ErrorKind::kUnsupported,
               "input 0 has dtype float16");
}
