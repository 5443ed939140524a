// The gradient rule of BatchNormalization against finite differences, in
// both forms: inference (constant statistics) and training (batch
// statistics, which the checker recomputes on every rerun since it runs the
// forward with the same `training` flag), whether training comes from the
// executor (KernelContext::training, any opset) or from the node's own
// opset-14+ training_mode=1; per-channel and per-activation (opset < 9,
// spatial=0) statistics; gradients reaching the running-statistics outputs.
// Then one Conv -> BatchNormalization training step through Session
// against PyTorch.
#include <cmath>

#include "gradcheck.h"
#include "graft/session.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

// x of the given shape; scale, bias, mean and var of `params` (var positive).
std::vector<Tensor> bn_inputs(Shape x, Shape params) {
  return {random_tensor(std::move(x), 1, -2, 2), random_tensor(params, 2, 0.5, 1.5),
          random_tensor(params, 3), random_tensor(params, 4), random_tensor(params, 5, 0.5, 2)};
}

void check(std::vector<Tensor> inputs, int opset, bool training, Attrs attrs = {},
           int n_outputs = 1) {
  GradCheck gc{make_node("BatchNormalization", 5, n_outputs, std::move(attrs)), std::move(inputs)};
  gc.opset = opset;
  gc.training = training;
  expect_gradients_match(gc);
}

}  // namespace

TEST(BatchNormGrad, InferenceForm) {
  check(bn_inputs({2, 3, 2, 2}, {3}), 13, false);
  check(bn_inputs({4, 3}, {3}), 9, false);
  check(bn_inputs({2, 2, 3}, {2}), 15, false, {{"epsilon", 0.1f}});
  check(bn_inputs({2, 2, 2, 1, 2}, {2}), 15, false, {{"training_mode", int64_t{0}}});
  // Opset < 9 with spatial=0: one statistic per channel and position.
  check(bn_inputs({3, 2, 2}, {2, 2}), 7, false, {{"spatial", int64_t{0}}});
}

TEST(BatchNormGrad, TrainingFormFromTheExecutor) {
  // The executor trains the node at any opset.
  check(bn_inputs({2, 3, 2, 2}, {3}), 13, true);
  check(bn_inputs({2, 3, 2, 2}, {3}), 9, true, {{"epsilon", 0.01f}});
  check(bn_inputs({5, 3}, {3}), 11, true);
  check(bn_inputs({2, 2, 3}, {2}), 15, true);
  check(bn_inputs({3, 2, 2}, {2, 2}), 7, true, {{"spatial", int64_t{0}}});
  // The executor's node asks for the running statistics too; a gradient
  // reaching them flows back through the (unbiased) batch variance.
  check(bn_inputs({2, 3, 2, 2}, {3}), 11, true, {{"momentum", 0.8f}}, 3);
}

TEST(BatchNormGrad, TrainingFormFromTrainingMode) {
  Attrs train = {{"training_mode", int64_t{1}}};
  check(bn_inputs({2, 3, 2, 2}, {3}), 14, false, train);
  check(bn_inputs({4, 2}, {2}), 15, false, train);
  // With the running outputs (biased batch variance, as ONNX specifies).
  check(bn_inputs({2, 3, 2}, {3}), 15, false, {{"training_mode", int64_t{1}}, {"momentum", 0.7f}},
        3);
  // Running statistics of another dtype: their outputs carry no float64
  // gradient in the check, Y's still does.
  std::vector<Tensor> mixed = bn_inputs({2, 2, 3}, {2});
  mixed[3] = mixed[3].cast(DType::kF32);
  mixed[4] = mixed[4].cast(DType::kF32);
  check(mixed, 15, false, train, 3);
}

namespace {

Tensor sequence(Shape shape, double (*f)(int)) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(f(i));
  return t;
}

void expect_close(const Tensor& t, const std::vector<double>& want, double tolerance = 1e-4) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
  std::vector<double> got = t.to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tolerance) << "at " << i;
}

}  // namespace

// One training step of Conv -> BatchNormalization (opset 11, ONNX momentum
// 0.9 = PyTorch's 0.1), every parameter trainable. The expected values come
// from PyTorch (float64): conv2d, then BatchNorm2d(3, eps=1e-5,
// momentum=0.1) in train() mode, y.backward(dy). Running variance uses the
// unbiased batch variance, as PyTorch's does.
TEST(BatchNormGrad, TrainingStepMatchesPyTorch) {
  Graph g;
  g.opset = 11;
  g.inputs.push_back({"x", DType::kF32, std::vector<Dim>{{2, ""}, {2, ""}, {3, ""}, {3, ""}}});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  g.initializers["w"] = sequence({3, 2, 2, 2}, [](int i) { return 0.5 * std::cos(1.3 * i); });
  g.initializers["cb"] = sequence({3}, [](int i) { return 0.1 * i; });
  g.initializers["scale"] = sequence({3}, [](int i) { return 1 + 0.2 * i; });
  g.initializers["bias"] = sequence({3}, [](int i) { return -0.1 * i; });
  g.initializers["mean"] = sequence({3}, [](int i) { return 0.05 * i; });
  g.initializers["var"] = sequence({3}, [](int i) { return 1 + 0.5 * i; });
  g.nodes.push_back(Node{"conv", "Conv", {"x", "w", "cb"}, {"c"}, {}});
  g.nodes.push_back(
      Node{"bn", "BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"y"}, {}});
  g.trainable = {"w", "cb", "scale", "bias"};
  Session s(g);
  s.set_training(true);
  Tensor x = sequence({2, 2, 3, 3}, [](int i) { return std::sin(0.7 * i + 0.3); });
  Tensor y = s.run({{"x", x}}).at("y");
  expect_close(y, {-0.874912252, 1.06499934,   0.916838047, -1.10155226, 1.80167644,  -0.0658771014,
                   -1.5822362,   -0.517874373, -1.54306681, -1.54586272, 0.559538382, 1.67753237,
                   -0.765716898, 1.13262623,   0.840419209, -1.21270141, 1.71287968,  -0.148884003,
                   -1.55762896,  -0.44205548,  -1.56394067, -1.52324277, 0.621778057, 1.71726417});
  expect_close(s.graph().initializers.at("mean"), {0.103047775, -0.0161907692, 0.0868260262});
  expect_close(s.graph().initializers.at("var"), {0.950270995, 1.41190334, 1.86586846});

  s.backward({{"y", sequence({2, 3, 2, 2}, [](int i) { return std::cos(0.37 * i); })}});
  std::map<std::string, Tensor> grads;
  for (const Parameter& p : s.parameters()) grads[p.name] = p.grad;
  expect_close(
      grads.at("w"),
      {-0.0780920462, -0.589644367, -0.670628521, -0.201972241,  -0.0919116726, -0.599293411,
       -0.66241794,   -0.188472277, 0.532015742,  0.936086932,   0.440478808,   -0.226108262,
       0.545751953,   0.940755465,  0.425722267,  -0.242086282,  -0.173648192,  -0.0473723332,
       0.202151112,   0.208043924,  -0.171393655, -0.0437791219, 0.203517049,   0.206891434});
  // The conv bias is cancelled by the batch mean: no gradient reaches it.
  expect_close(grads.at("cb"), {0, 0, 0});
  expect_close(grads.at("scale"), {0.0993681823, 1.21197708, -0.88318046});
  expect_close(grads.at("bias"), {4.1376819, 1.95728268, -3.7827419});
}
