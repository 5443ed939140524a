// BatchNormalization: hand-checked cases the ONNX conformance data does not
// cover (per-activation statistics of opset < 9, rank-2 inputs, training
// mode with several channels, mixed dtypes, legacy is_test) and every error.
#include <gtest/gtest.h>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

// BatchNormalization(x, scale, bias, mean, var) with outputs y0, y1, ...;
// an empty output name leaves that optional output unrequested.
struct BatchNorm {
  int opset = 15;
  std::map<std::string, Attribute> attrs = {};
  std::vector<Tensor> inputs = {};
  std::vector<std::string> outputs = {"y0"};

  std::vector<Tensor> run() const {
    Graph g;
    g.opset = opset;
    Node n{"bn", "BatchNormalization", {"x", "scale", "bias", "mean", "var"}, outputs, attrs};
    std::vector<Dim> dims;
    for (int64_t d : inputs[0].shape()) dims.push_back(Dim{d, ""});
    g.inputs.push_back(ValueDecl{"x", inputs[0].dtype(), dims});
    for (size_t i = 1; i < 5; ++i) g.initializers[n.inputs[i]] = inputs[i];
    for (const std::string& o : outputs)
      if (!o.empty()) g.outputs.push_back(ValueDecl{o, DType::kF32, std::nullopt});
    g.nodes.push_back(n);
    TensorMap out = Session(g).run({{"x", inputs[0]}});
    std::vector<Tensor> result;
    for (const std::string& o : outputs) result.push_back(o.empty() ? Tensor() : out.at(o));
    return result;
  }
  Tensor run1() const { return run().at(0); }
};

Tensor f32(Shape shape, std::vector<float> v) { return Tensor::from_vector<float>(shape, v); }

void expect_near(const Tensor& t, const std::vector<double>& want) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

// x = 1 2 | 3 4 (two channels of length 2), mean 1 2, var 3 0, epsilon 1:
// channel 0 is (x - 1) / 2, channel 1 is (x - 2) * 2 + 1.
std::vector<Tensor> two_channels() {
  return {f32({1, 2, 2}, {1, 2, 3, 4}), f32({2}, {1, 2}), f32({2}, {0, 1}), f32({2}, {1, 2}),
          f32({2}, {3, 0})};
}

}  // namespace

TEST(BatchNormalization, InferenceUsesRunningStatistics) {
  BatchNorm bn{15, {{"epsilon", 1.0f}}, two_channels()};
  expect_near(bn.run1(), {0, 0.5, 3, 5});
}

// Before opset 14 graft always runs the inference form, whatever is_test says
// (inference models of opset < 7 often leave it at its default 0).
TEST(BatchNormalization, LegacyOpsetsRunInferenceForm) {
  for (int opset : {6, 7, 9}) {
    BatchNorm bn{opset, {{"epsilon", 1.0f}, {"is_test", int64_t{0}}}, two_channels()};
    if (opset >= 7) bn.attrs.erase("is_test");
    if (opset == 7) bn.attrs["spatial"] = int64_t{1};
    expect_near(bn.run1(), {0, 0.5, 3, 5});
  }
}

// spatial=0 (opset < 9): one statistic per channel and position.
TEST(BatchNormalization, PerActivationStatistics) {
  std::vector<Tensor> in = {f32({1, 2, 2}, {1, 2, 3, 4}), f32({2, 2}, {1, 2, 3, 4}),
                            f32({2, 2}, {0, 0, 0, 1}), f32({2, 2}, {0, 1, 2, 3}),
                            f32({2, 2}, {0, 0, 0, 0})};
  BatchNorm bn{7, {{"epsilon", 1.0f}, {"spatial", int64_t{0}}}, in};
  expect_near(bn.run1(), {1, 2, 3, 5});
  // Per-channel statistics stay allowed with spatial=0.
  bn.inputs = two_channels();
  expect_near(bn.run1(), {0, 0.5, 3, 5});
}

TEST(BatchNormalization, RankTwoInput) {
  std::vector<Tensor> in = two_channels();
  in[0] = f32({2, 2}, {1, 2, 3, 4});  // rows are samples: channel 0 is 1, 3
  BatchNorm bn{9, {{"epsilon", 1.0f}}, in};
  expect_near(bn.run1(), {0, 1, 1, 5});
}

// Channel 0 holds 1 3 | 5 7: mean 4, biased variance 5; channel 1 holds
// 2 2 | 2 2: mean 2, variance 0. With epsilon 4 channel 0 divides by 3.
TEST(BatchNormalization, TrainingModeUsesBatchStatistics) {
  std::vector<Tensor> in = {f32({2, 2, 2}, {1, 3, 2, 2, 5, 7, 2, 2}), f32({2}, {2, 1}),
                            f32({2}, {1, -0.5f}), f32({2}, {10, 0}), f32({2}, {1, 4})};
  BatchNorm bn{15,
               {{"epsilon", 4.0f}, {"momentum", 0.5f}, {"training_mode", int64_t{1}}},
               in,
               {"y", "running_mean", "running_var"}};
  std::vector<Tensor> out = bn.run();
  expect_near(out[0], {-1, 1.0 / 3, -0.5, -0.5, 5.0 / 3, 3, -0.5, -0.5});
  expect_near(out[1], {7, 1});  // 10 * 0.5 + 4 * 0.5, 0 * 0.5 + 2 * 0.5
  expect_near(out[2], {3, 2});  // 1 * 0.5 + 5 * 0.5, 4 * 0.5 + 0 * 0.5
  // Training mode without the running outputs still normalises by the batch.
  bn.outputs = {"y"};
  expect_near(bn.run1(), {-1, 1.0 / 3, -0.5, -0.5, 5.0 / 3, 3, -0.5, -0.5});
}

// Opset 15 lets x, scale/bias and mean/var have different float types; the
// running statistics keep mean/var's type.
TEST(BatchNormalization, TrainingModeMixedDtypes) {
  std::vector<Tensor> in = {Tensor::from_vector<double>({2, 1}, {1, 3}), f32({1}, {1}),
                            f32({1}, {0}), Tensor::from_vector<double>({1}, {0}),
                            Tensor::from_vector<double>({1}, {0})};
  BatchNorm bn{
      15, {{"epsilon", 0.0f}, {"training_mode", int64_t{1}}}, in, {"y", "", "running_var"}};
  std::vector<Tensor> out = bn.run();
  EXPECT_EQ(out[0].dtype(), DType::kF64);
  expect_near(out[0], {-1, 1});
  EXPECT_EQ(out[2].dtype(), DType::kF64);
  expect_near(out[2], {0.1});  // default momentum 0.9: 0 * 0.9 + 1 * 0.1
}

TEST(BatchNormalization, Errors) {
  using K = ErrorKind;
  auto bn = [](int opset, std::map<std::string, Attribute> a, std::vector<Tensor> in,
               std::vector<std::string> outs = {"y0"}) {
    return [=] { BatchNorm{opset, a, in, outs}.run(); };
  };
  std::vector<Tensor> ok = two_channels();
  expect_error(bn(15, {{"training_mode", int64_t{2}}}, ok), K::kUnsupported,
               "training_mode 2 is not supported (0 or 1)");
  expect_error(bn(7, {{"spatial", int64_t{-1}}}, ok), K::kUnsupported,
               "spatial -1 is not supported (0 or 1)");
  expect_error(
      bn(9, {}, ok, {"y", "m", "v", "sm", "sv"}), K::kUnsupported,
      "the training outputs (mean, var, saved_mean, saved_var) of opset 9 are not supported");
  expect_error(bn(14, {{"training_mode", int64_t{1}}}, ok, {"y", "m", "v", "sm"}), K::kCorruption,
               "has 4 outputs; opset 14 gives at most 3");
  expect_error(bn(15, {}, ok, {"y", "m", "v"}), K::kCorruption,
               "outputs running_mean and running_var are only given when training_mode=1");
  std::vector<Tensor> in = ok;
  in[0] = f32({4}, {1, 2, 3, 4});
  expect_error(bn(15, {}, in), K::kInvalidArgument,
               "input has shape 4; BatchNormalization needs N x C x ...");
  in = ok;
  in[3] = f32({3}, {0, 0, 0});
  expect_error(bn(15, {}, in), K::kInvalidArgument, "mean has shape 3; 2 channels need 2");
  expect_error(bn(7, {{"spatial", int64_t{0}}}, in), K::kInvalidArgument,
               "mean has shape 3; 2 channels need 2 or 2x2");
  in[3] = f32({2, 2}, {0, 0, 0, 0});
  expect_error(bn(7, {{"spatial", int64_t{0}}}, in), K::kInvalidArgument,
               "mean has shape 2x2 but scale has shape 2");
  in = ok;
  in[0] = ok[0].cast(DType::kI32);
  expect_error(bn(15, {}, in), K::kUnsupported, "input 0 has dtype int32");
}
