// Gradient rules of Gemm and MatMul against finite differences: Gemm with
// every transA/transB combination, alpha/beta, each shape C may broadcast
// from and the legacy opset forms; MatMul with 1-D promotion on either side
// and batch broadcasting in both directions. Products are smooth: no nudging.
#include "gradcheck.h"
#include "ops/op.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

void check(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int opset = 13) {
  GradCheck gc{make_node(op, static_cast<int>(inputs.size()), 1, std::move(attrs)),
               std::move(inputs)};
  gc.opset = opset;
  expect_gradients_match(gc);
}

Tensor x(Shape shape, uint32_t seed) { return random_tensor(std::move(shape), seed); }

Attrs trans(int64_t ta, int64_t tb) { return {{"transA", ta}, {"transB", tb}}; }

}  // namespace

TEST(LinalgGrad, GemmTransposes) {
  // Y is 3 x 4 with inner size 2 in every case.
  check("Gemm", {x({3, 2}, 1), x({2, 4}, 2), x({3, 4}, 3)}, trans(0, 0));
  check("Gemm", {x({2, 3}, 1), x({2, 4}, 2), x({3, 4}, 3)}, trans(1, 0));
  check("Gemm", {x({3, 2}, 1), x({4, 2}, 2), x({3, 4}, 3)}, trans(0, 1));
  check("Gemm", {x({2, 3}, 1), x({4, 2}, 2), x({3, 4}, 3)}, trans(1, 1));
}

TEST(LinalgGrad, GemmAlphaBeta) {
  Attrs a = trans(1, 0);
  a["alpha"] = 0.5f;
  a["beta"] = -2.0f;
  check("Gemm", {x({2, 3}, 1), x({2, 4}, 2), x({3, 4}, 3)}, a);
  a = trans(0, 1);
  a["beta"] = 0.0f;  // C still an input, but contributes (and receives) nothing
  check("Gemm", {x({3, 2}, 1), x({4, 2}, 2), x({1, 4}, 3)}, a);
}

TEST(LinalgGrad, GemmBroadcastC) {
  Tensor a = x({3, 2}, 1), b = x({2, 4}, 2);
  Attrs beta = {{"beta", 1.5f}};
  check("Gemm", {a, b, x({4}, 3)}, beta);     // a row, over the batch
  check("Gemm", {a, b, x({1, 4}, 3)}, beta);
  check("Gemm", {a, b, x({3, 1}, 3)}, beta);  // a column
  check("Gemm", {a, b, x({1, 1}, 3)}, beta);
  check("Gemm", {a, b, x({1}, 3)}, beta);
  check("Gemm", {a, b, x({}, 3)}, beta);      // a scalar
  check("Gemm", {a, b});                      // no C (opset 11+)
}

TEST(LinalgGrad, GemmLegacyOpsets) {
  Tensor a = x({3, 2}, 1), b = x({4, 2}, 2);
  Attrs legacy = trans(0, 1);
  check("Gemm", {a, b, x({3, 4}, 3)}, legacy, 6);  // exact C, no broadcast attribute
  legacy["broadcast"] = int64_t{1};
  legacy["alpha"] = 2.0f;
  check("Gemm", {a, b, x({4}, 3)}, legacy, 6);
  check("Gemm", {a, b, x({1, 4}, 3)}, trans(0, 1), 9);
}

TEST(LinalgGrad, MatMulMatrices) {
  check("MatMul", {x({3, 2}, 1), x({2, 4}, 2)});
  check("MatMul", {x({1, 5}, 1), x({5, 1}, 2)});
  check("MatMul", {x({3, 2}, 1), x({2, 4}, 2)}, {}, 1);  // opset 1: same maths
}

TEST(LinalgGrad, MatMulOneDimensionalPromotion) {
  check("MatMul", {x({3}, 1), x({3, 4}, 2)});        // row vector times matrix
  check("MatMul", {x({2, 3}, 1), x({3}, 2)});        // matrix times column vector
  check("MatMul", {x({4}, 1), x({4}, 2)});           // dot product: a scalar
  check("MatMul", {x({3}, 1), x({2, 3, 2}, 2)});     // vector against a batch
  check("MatMul", {x({2, 2, 3}, 1), x({3}, 2)});     // a batch against a vector
}

TEST(LinalgGrad, MatMulBatchBroadcasting) {
  check("MatMul", {x({2, 3, 4}, 1), x({2, 4, 2}, 2)});     // equal batches
  check("MatMul", {x({2, 3, 4}, 1), x({4, 2}, 2)});        // B shared by the batch
  check("MatMul", {x({3, 4}, 1), x({2, 4, 2}, 2)});        // A shared by the batch
  check("MatMul", {x({2, 1, 2, 3}, 1), x({3, 3, 2}, 2)});  // both broadcast: batch 2 x 3
  check("MatMul", {x({1, 2, 3}, 1), x({2, 1, 3, 2}, 2)});  // A's size-1 batch axis
}

TEST(LinalgGrad, Float32ByHand) {
  // The trainer runs in float32: Y = A B with A = [[1, 2]], B = [[3], [4]]
  // and dY = [[1]] gives dA = dY B^T = [[3, 4]] and dB = A^T dY = [[1], [2]].
  Node node = make_node("MatMul", 2, 1);
  Tensor a = Tensor::from_vector<float>({1, 2}, {1, 2});
  Tensor b = Tensor::from_vector<float>({2, 1}, {3, 4});
  Tensor dy = Tensor::from_vector<float>({1, 1}, {1});
  Tensor da(DType::kF32, {1, 2}), db(DType::kF32, {2, 1});
  ops::BackwardContext bc{node, 13, false, {&a, &b}, {nullptr}, {&dy}, {&da, &db}};
  ops::run_backward(bc);
  EXPECT_EQ(da.to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(db.to_vector<float>(), (std::vector<float>{1, 2}));
  // Gemm with transB, alpha 2 and a C broadcast from a scalar (beta 3).
  node = make_node("Gemm", 3, 1, {{"transB", int64_t{1}}, {"alpha", 2.0f}, {"beta", 3.0f}});
  Tensor bt = Tensor::from_vector<float>({1, 2}, {3, 4});
  Tensor c = Tensor::scalar<float>(0), dbt(DType::kF32, {1, 2}), dc(DType::kF32, {});
  da = Tensor(DType::kF32, {1, 2});
  ops::BackwardContext gc{node, 13, false, {&a, &bt, &c}, {nullptr}, {&dy}, {&da, &dbt, &dc}};
  ops::run_backward(gc);
  EXPECT_EQ(da.to_vector<float>(), (std::vector<float>{6, 8}));
  EXPECT_EQ(dbt.to_vector<float>(), (std::vector<float>{2, 4}));
  EXPECT_EQ(dc.to_vector<float>(), (std::vector<float>{3}));
}
