// BatchNormalization's oneDNN kernels against the reference kernel: the
// inference form, the training form (with the running statistics), both
// backward passes, and the cases that decline.
#include "backend_test_util.h"

namespace graft::test {
namespace {

// X, scale, B, mean, var for an input of shape x (channels x[1]).
std::vector<Tensor> norm_inputs(const Shape& x, uint32_t seed = 21) {
  Shape c{x[1]};
  return {uniform(x, seed, -2, 3), uniform(c, seed + 1, 0.5, 1.5), uniform(c, seed + 2),
          uniform(c, seed + 3, -0.5, 0.5), uniform(c, seed + 4, 0.5, 2)};
}

// {4, 24, 33, 33} is large enough for the training loops to run on several
// threads; {2, 3, 57, 59}'s planes are streamed (Store::kStreamed), their
// starts not 64-byte aligned, their ends partial vectors.
const std::vector<Shape> kShapes = {{1, 3, 5, 5}, {3, 4, 6, 5},    {3, 16, 7, 7},   {4, 6},
                                    {3, 5, 8},    {2, 3, 3, 4, 2}, {4, 24, 33, 33}, {2, 3, 57, 59}};

TEST(BackendBatchNorm, InferenceFormMatchesReference) {
  for (const Shape& x : kShapes) {
    SCOPED_TRACE(shape_str(x));
    FastCase fc;
    fc.node = make_node("BatchNormalization", 5, 1, {{"epsilon", 1e-3f}});
    fc.inputs = norm_inputs(x);
    fc.opset = 15;
    expect_fast_matches_reference(fc);
  }
}

TEST(BackendBatchNorm, TrainingModeWithRunningStatisticsMatchesReference) {
  // ONNX's own training form: biased running variance.
  for (const Shape& x : kShapes) {
    SCOPED_TRACE(shape_str(x));
    FastCase fc;
    fc.node =
        make_node("BatchNormalization", 5, 3, {{"training_mode", int64_t{1}}, {"momentum", 0.8f}});
    fc.inputs = norm_inputs(x);
    fc.opset = 15;
    expect_fast_matches_reference(fc);
  }
}

TEST(BackendBatchNorm, ExecutorTrainingMatchesReference) {
  // graft trains the node: batch statistics, unbiased running variance (as
  // PyTorch), at an opset before training_mode existed.
  for (const Shape& x : kShapes) {
    SCOPED_TRACE(shape_str(x));
    FastCase fc;
    fc.node = make_node("BatchNormalization", 5, 3);
    fc.node.outputs = {"y", "running_mean", "running_var"};
    fc.inputs = norm_inputs(x);
    fc.opset = 11;
    fc.training = true;
    fc.validate = false;  // the executor's node, as Session::run_batch_norm_training makes it
    expect_fast_matches_reference(fc);
  }
}

// Statistics of data far from zero: a one-pass E[x^2] - E[x]^2 without
// a shift would lose the variance to cancellation.
TEST(BackendBatchNorm, TrainingStatisticsOfDataFarFromZero) {
  FastCase fc;
  fc.node = make_node("BatchNormalization", 5, 3);
  fc.node.outputs = {"y", "running_mean", "running_var"};
  fc.inputs = norm_inputs({4, 8, 20, 20});
  fc.inputs[0] = uniform({4, 8, 20, 20}, 5, 1000, 1000.01);
  fc.opset = 11;
  fc.training = true;
  fc.validate = false;
  expect_fast_matches_reference(fc);
}

TEST(BackendBatchNorm, EachGradientAlone) {
  for (bool training : {false, true}) {
    for (int wanted : {0, 1, 2}) {
      SCOPED_TRACE(::testing::Message() << "training " << training << ", gradient " << wanted);
      FastCase fc;
      fc.node = make_node("BatchNormalization", 5, 1);
      fc.inputs = norm_inputs({3, 4, 5, 5});
      fc.training = training;
      fc.wanted = {wanted};
      expect_fast_matches_reference(fc);
    }
  }
}

TEST(BackendBatchNorm, GradientReachingTheRunningStatisticsDeclines) {
  FastCase fc;
  fc.node = make_node("BatchNormalization", 5, 3, {{"training_mode", int64_t{1}}});
  fc.inputs = norm_inputs({3, 4, 5, 5});
  fc.opset = 15;
  fc.graded_outputs = {0, 1, 2};
  expect_served(fc, true, false);
}

TEST(BackendBatchNorm, PerActivationStatisticsDecline) {
  // spatial=0 (opset < 9): one statistic per channel and position.
  FastCase fc;
  fc.node = make_node("BatchNormalization", 5, 1, {{"spatial", int64_t{0}}});
  Shape x{3, 2, 4};
  Shape p{2, 4};
  fc.inputs = {uniform(x, 1), uniform(p, 2, 0.5, 1.5), uniform(p, 3), uniform(p, 4),
               uniform(p, 5, 0.5, 2)};
  fc.opset = 7;
  expect_served(fc, false, false);
}

TEST(BackendBatchNorm, Float64Declines) {
  FastCase fc;
  fc.node = make_node("BatchNormalization", 5, 1);
  for (const Tensor& t : norm_inputs({2, 3, 4, 4})) fc.inputs.push_back(t.cast(DType::kF64));
  expect_served(fc, false, false);
}

}  // namespace
}  // namespace graft::test
