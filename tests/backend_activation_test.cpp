// Activations, Clip and Softmax on oneDNN against the reference kernels,
// including inputs exactly at the kinks, where the two must pick the same
// one-sided derivative.
#include "backend_test_util.h"

namespace graft::test {
namespace {

// Random values plus every kink of the ops under test.
Tensor with_kinks(Shape shape, uint32_t seed) {
  Tensor t = uniform(shape, seed, -8, 8);
  const float kinks[] = {0.f, -0.f, 3.f, -3.f, 6.f, 1e-7f, -1e-7f, 2.999999f, 6.000001f};
  float* p = t.data<float>();
  for (size_t i = 0; i < std::size(kinks) && static_cast<int64_t>(i) < t.numel(); ++i)
    p[i * 7 % t.numel()] = kinks[i];
  return t;
}

TEST(BackendActivation, MatchesReference) {
  struct Row {
    const char* op;
    std::map<std::string, Attribute> attrs;
  };
  const Row rows[] = {{"Relu", {}},    {"LeakyRelu", {}}, {"LeakyRelu", {{"alpha", 0.2f}}},
                      {"Sigmoid", {}}, {"Tanh", {}},      {"HardSwish", {}}};
  for (const Row& row : rows) {
    for (Shape shape : {Shape{1, 32, 7, 7}, Shape{3, 5}, Shape{1000}}) {
      SCOPED_TRACE(::testing::Message() << row.op << " " << shape_str(shape));
      FastCase fc;
      fc.node = make_node(row.op, 1, 1, row.attrs);
      fc.inputs = {with_kinks(shape, 5)};
      fc.tolerance = 1e-5;
      expect_fast_matches_reference(fc);
    }
  }
}

TEST(BackendActivation, ClipMatchesReferenceAtTheBounds) {
  Tensor x = with_kinks({2, 16, 5, 5}, 6);
  // ReLU6 as exported from opset 11 on (bounds as inputs) and before (attributes).
  FastCase relu6;
  relu6.node = make_node("Clip", 3, 1);
  relu6.inputs = {x, Tensor::scalar(0.f), Tensor::scalar(6.f)};
  relu6.wanted = {0};
  expect_fast_matches_reference(relu6);

  FastCase legacy;
  legacy.node = make_node("Clip", 1, 1, {{"min", -1.f}, {"max", 3.f}});
  legacy.inputs = {x};
  legacy.opset = 6;
  expect_fast_matches_reference(legacy);

  FastCase only_min;
  only_min.node = make_node("Clip", 2, 1);
  only_min.inputs = {x, Tensor::scalar(-3.f)};
  only_min.wanted = {0};
  expect_fast_matches_reference(only_min);

  FastCase unbounded;
  unbounded.node = make_node("Clip", 1, 1);
  unbounded.inputs = {x};
  expect_fast_matches_reference(unbounded);
}

TEST(BackendActivation, ClipWithCrossedBoundsDeclines) {
  // min > max: ONNX gives max everywhere, oneDNN would give min.
  FastCase fc;
  fc.node = make_node("Clip", 3, 1);
  fc.inputs = {uniform({3, 4}, 1), Tensor::scalar(2.f), Tensor::scalar(1.f)};
  fc.wanted = {0};
  expect_served(fc, false, false);
}

TEST(BackendActivation, OtherOpsAndDtypesStayOnTheReference) {
  FastCase exp;
  exp.node = make_node("Exp", 1, 1);
  exp.inputs = {uniform({3, 4}, 1)};
  expect_served(exp, false, false);

  FastCase relu64;
  relu64.node = make_node("Relu", 1, 1);
  relu64.inputs = {uniform({3, 4}, 1).cast(DType::kF64)};
  expect_served(relu64, false, false);

  FastCase relu_int;
  relu_int.node = make_node("Relu", 1, 1);
  relu_int.inputs = {uniform({3, 4}, 1, -5, 5).cast(DType::kI32)};
  relu_int.backward = false;
  expect_served(relu_int, false, false);
}

TEST(BackendSoftmax, MatchesReference) {
  struct Row {
    const char* op;
    Shape x;
    int opset;
    std::map<std::string, Attribute> attrs;
  };
  const Row rows[] = {
      {"Softmax", {3, 1000}, 13, {}},
      {"Softmax", {2, 3, 4}, 13, {{"axis", int64_t{1}}}},
      {"Softmax", {2, 3, 4}, 13, {{"axis", int64_t{0}}}},
      {"Softmax", {2, 3, 4}, 11, {{"axis", int64_t{1}}}},  // coerced to 2 x 12
      {"Softmax", {2, 3, 4}, 11, {}},
      {"LogSoftmax", {3, 10}, 13, {}},
      {"LogSoftmax", {2, 3, 4}, 13, {{"axis", int64_t{-2}}}},
      {"LogSoftmax", {2, 3, 4}, 9, {{"axis", int64_t{0}}}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(::testing::Message()
                 << row.op << " " << shape_str(row.x) << " opset " << row.opset);
    FastCase fc;
    fc.node = make_node(row.op, 1, 1, row.attrs);
    fc.inputs = {uniform(row.x, 9, -5, 5)};
    fc.opset = row.opset;
    fc.tolerance = 1e-5;
    expect_fast_matches_reference(fc);
  }
}

TEST(BackendSoftmax, Float64Declines) {
  FastCase fc;
  fc.node = make_node("Softmax", 1, 1);
  fc.inputs = {uniform({3, 4}, 1).cast(DType::kF64)};
  expect_served(fc, false, false);
}

}  // namespace
}  // namespace graft::test
