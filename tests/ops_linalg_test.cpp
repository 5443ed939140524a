// Gemm and MatMul: the cases the ONNX conformance data does not cover
// (integer dtypes, legacy broadcast, 1-D operands, batch broadcasting) and
// every error message.
#include <gtest/gtest.h>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

// Runs one node `op` on inputs a, b (and c when given), all fed at run time.
Tensor run_product(const std::string& op, int opset, std::map<std::string, Attribute> attrs,
                   std::vector<Tensor> inputs) {
  Graph g;
  g.opset = opset;
  Node n{"n", op, {}, {"y"}, std::move(attrs)};
  TensorMap feed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string name(1, static_cast<char>('a' + i));
    n.inputs.push_back(name);
    std::vector<Dim> dims;
    for (int64_t d : inputs[i].shape()) dims.push_back(Dim{d, ""});
    g.inputs.push_back(ValueDecl{name, inputs[i].dtype(), dims});
    feed[name] = inputs[i];
  }
  g.nodes.push_back(n);
  g.outputs.push_back(ValueDecl{"y", DType::kF32, std::nullopt});
  return Session(g).run(feed).at("y");
}

Tensor f32(Shape shape, std::vector<float> v) { return Tensor::from_vector<float>(shape, v); }
Tensor i32(Shape shape, std::vector<int32_t> v) { return Tensor::from_vector<int32_t>(shape, v); }
Tensor i64(Shape shape, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(shape, v); }

}  // namespace

// --- Gemm ------------------------------------------------------------------------

TEST(Gemm, Int32WithColumnBias) {
  // [[1 2] [3 4]] x [[1 0] [1 1]] = [[3 2] [7 4]], plus 2 * [[10] [20]]
  Tensor y =
      run_product("Gemm", 13, {{"beta", 2.0f}},
                  {i32({2, 2}, {1, 2, 3, 4}), i32({2, 2}, {1, 0, 1, 1}), i32({2, 1}, {10, 20})});
  EXPECT_EQ(y.dtype(), DType::kI32);
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{23, 22, 47, 44}));
}

TEST(Gemm, BothTransposedWithScalarBias) {
  // A' = [[1 3 5] [2 4 6]], B' = [[1 1] [0 1] [1 0]] -> A'B' = [[6 4] [8 6]]
  Tensor a = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({2, 3}, {1, 0, 1, 1, 1, 0});
  Tensor y =
      run_product("Gemm", 13, {{"transA", int64_t{1}}, {"transB", int64_t{1}}, {"alpha", 0.5f}},
                  {a, b, f32({}, {100})});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{103, 102, 104, 103}));
}

TEST(Gemm, LegacyExactBiasWithoutBroadcast) {
  Tensor a = f32({1, 2}, {1, 2});
  Tensor b = f32({2, 2}, {1, 0, 0, 1});
  Tensor y = run_product("Gemm", 6, {}, {a, b, f32({1, 2}, {10, 20})});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{11, 22}));
  expect_error(
      [&] {
        run_product("Gemm", 6, {}, {a, b, f32({2}, {10, 20})});
      },
      ErrorKind::kInvalidArgument, "C of shape 2 does not broadcast to the 1x2 output");
  Tensor z = run_product("Gemm", 6, {{"broadcast", int64_t{1}}}, {a, b, f32({2}, {10, 20})});
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{11, 22}));
}

TEST(Gemm, Errors) {
  Tensor m = f32({2, 2}, {1, 2, 3, 4});
  expect_error(
      [&] {
        run_product("Gemm", 13, {}, {f32({4}, {1, 2, 3, 4}), m});
      },
      ErrorKind::kInvalidArgument, "Gemm needs two matrices, got shapes 4 and 2x2");
  expect_error(
      [&] {
        run_product("Gemm", 13, {}, {f32({1, 3}, {1, 2, 3}), m});
      },
      ErrorKind::kInvalidArgument, "inner sizes 3 and 2 differ");
  expect_error(
      [&] {
        run_product("Gemm", 13, {}, {m, i64({2, 2}, {1, 2, 3, 4})});
      },
      ErrorKind::kInvalidArgument, "A is float32 but B is int64");
  expect_error(
      [&] {
        run_product("Gemm", 13, {}, {m, m, i64({1}, {1})});
      },
      ErrorKind::kInvalidArgument, "C is int64 but A is float32");
  expect_error(
      [&] {
        run_product("Gemm", 13, {}, {m, m, f32({3}, {1, 2, 3})});
      },
      ErrorKind::kInvalidArgument, "C of shape 3 does not broadcast to the 2x2 output");
  Tensor h = m.cast(DType::kF16);
  expect_error(
      [&] {
        run_product("Gemm", 13, {}, {h, h});
      },
      ErrorKind::kUnsupported, "input 0 has dtype float16");
}

// --- MatMul ----------------------------------------------------------------------

TEST(MatMul, VectorTimesVectorIsAScalar) {
  Tensor y = run_product("MatMul", 13, {}, {f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})});
  EXPECT_EQ(y.shape(), Shape{});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{32}));
}

TEST(MatMul, VectorOperandsAgainstBatches) {
  Tensor batch = f32({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor left = run_product("MatMul", 13, {}, {f32({2}, {1, 1}), batch});
  EXPECT_EQ(left.shape(), (Shape{2, 2}));
  EXPECT_EQ(left.to_vector<float>(), (std::vector<float>{4, 6, 12, 14}));
  Tensor right = run_product("MatMul", 13, {}, {batch, f32({2}, {1, -1})});
  EXPECT_EQ(right.shape(), (Shape{2, 2}));
  EXPECT_EQ(right.to_vector<float>(), (std::vector<float>{-1, -1, -1, -1}));
}

TEST(MatMul, BroadcastsBatchesOfInt64) {
  // A: 2 batches of 1x2; B: 1 batch of 2x2, shared.
  Tensor a = i64({2, 1, 1, 2}, {1, 0, 0, 1});
  Tensor b = i64({1, 2, 2}, {1, 2, 3, 4});
  Tensor y = run_product("MatMul", 13, {}, {a, b});
  EXPECT_EQ(y.shape(), (Shape{2, 1, 1, 2}));
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(MatMul, EmptyInnerDimensionGivesZeros) {
  Tensor y = run_product("MatMul", 13, {}, {f32({2, 0}, {}), f32({0, 3}, {})});
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.to_vector<float>(), std::vector<float>(6, 0.0f));
}

TEST(MatMul, Errors) {
  expect_error(
      [&] {
        run_product("MatMul", 13, {}, {f32({}, {1}), f32({1}, {1})});
      },
      ErrorKind::kInvalidArgument, "MatMul needs operands of rank 1 or more");
  expect_error(
      [&] {
        run_product("MatMul", 13, {}, {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2}, {1, 2})});
      },
      ErrorKind::kInvalidArgument, "MatMul cannot multiply 2x3 by 2: inner sizes 3 and 2 differ");
  expect_error(
      [&] {
        run_product("MatMul", 13, {}, {f32({2, 1, 1}, {1, 2}), f32({3, 1, 1}, {1, 2, 3})});
      },
      ErrorKind::kInvalidArgument, "shapes 2 and 3 cannot be broadcast together");
  expect_error(
      [&] {
        run_product("MatMul", 13, {}, {f32({1}, {1}), i64({1}, {1})});
      },
      ErrorKind::kInvalidArgument, "A is float32 but B is int64");
  Tensor b = Tensor::from_vector<bool>({1}, {true});
  expect_error(
      [&] {
        run_product("MatMul", 13, {}, {b, b});
      },
      ErrorKind::kUnsupported, "input 0 has dtype bool");
}
