// Losses: values and gradients against PyTorch's recorded numbers and
// against central finite differences.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "graft/loss.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

nlohmann::json torch_reference() {
  std::ifstream f(std::string(GRAFT_TEST_DATA) + "/torch_reference.json");
  return nlohmann::json::parse(f);
}

// Central differences of f at x, element by element (float64 arithmetic on a
// float32 input: the step is large enough for float32 rounding not to matter).
template <typename F>
void expect_gradient_matches(const Tensor& x, const Tensor& grad, F f, double tol) {
  const double h = 1e-2;
  for (int64_t i = 0; i < x.numel(); ++i) {
    Tensor xp = x.clone(), xm = x.clone();
    xp.data<float>()[i] += static_cast<float>(h);
    xm.data<float>()[i] -= static_cast<float>(h);
    double fd = (f(xp) - f(xm)) / (2 * h);
    EXPECT_NEAR(grad.data<float>()[i], fd, tol) << "element " << i;
  }
}

}  // namespace

TEST(SoftmaxCrossEntropy, MatchesTorchForEveryOption) {
  auto ref = torch_reference()["ce"];
  std::vector<double> z64 = ref["logits"];
  std::vector<float> z(z64.begin(), z64.end());
  Tensor logits = Tensor::from_vector<float>({4, 5}, z);
  std::vector<int64_t> labels = ref["labels"];
  std::vector<double> w64 = ref["weights"];
  std::vector<float> weights(w64.begin(), w64.end());
  std::map<std::string, CrossEntropyOptions> options = {
      {"plain", {}}, {"smooth", {0.1f, {}}}, {"weighted", {0, weights}},
      {"weighted_smooth", {0.2f, weights}}};
  for (const auto& [name, opt] : options) {
    LossResult r = softmax_cross_entropy(logits, labels, opt);
    EXPECT_NEAR(r.value, ref["cases"][name]["loss"].get<double>(), 1e-5) << name;
    std::vector<double> g = ref["cases"][name]["grad"];
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(r.grad.data<float>()[i], g[i], 1e-6) << name;
    expect_gradient_matches(logits, r.grad,
                            [&](const Tensor& x) { return softmax_cross_entropy(x, labels, opt).value; },
                            1e-4);
  }
}

TEST(SoftmaxCrossEntropy, HugeLogitsStayFinite) {
  Tensor logits = Tensor::from_vector<float>({2, 3}, {1e4f, -1e4f, 0, -3e38f, 3e38f, 0});
  LossResult r = softmax_cross_entropy(logits, {1, 0});
  EXPECT_TRUE(std::isfinite(r.value));
  for (float g : r.grad.to_vector<float>()) EXPECT_TRUE(std::isfinite(g));
}

TEST(SoftmaxCrossEntropy, LabelOutOfRangeNamesTheSample) {
  Tensor logits(DType::kF32, {3, 4});
  expect_error([&] { softmax_cross_entropy(logits, {0, 4, 1}); }, ErrorKind::kInvalidArgument,
               "label 4 of sample 1 is out of range for 4 classes");
  expect_error([&] { softmax_cross_entropy(logits, {0, -1, 1}); }, ErrorKind::kInvalidArgument,
               "label -1 of sample 1");
  expect_error([&] { softmax_cross_entropy(logits, {0, 1}); }, ErrorKind::kInvalidArgument,
               "2 labels for a batch of 3");
}

TEST(BinaryCrossEntropyWithLogits, ValueAndGradient) {
  Tensor logits = Tensor::from_vector<float>({2, 2}, {0.5f, -1.0f, 3.0f, 0.0f});
  Tensor targets = Tensor::from_vector<float>({2, 2}, {1, 0, 0, 1});
  LossResult r = binary_cross_entropy_with_logits(logits, targets);
  // By hand: mean of softplus(-0.5), softplus(-1), softplus(3), softplus(0).
  auto softplus = [](double x) { return std::log1p(std::exp(x)); };
  EXPECT_NEAR(r.value, (softplus(-0.5) + softplus(-1.0) + softplus(3.0) + softplus(0)) / 4, 1e-6);
  expect_gradient_matches(
      logits, r.grad, [&](const Tensor& x) { return binary_cross_entropy_with_logits(x, targets).value; },
      1e-4);
  expect_error([&] { binary_cross_entropy_with_logits(logits, Tensor(DType::kF32, {2, 3})); },
               ErrorKind::kInvalidArgument, "targets must be float32");
}

TEST(MeanSquaredError, ValueAndGradient) {
  Tensor p = Tensor::from_vector<float>({3}, {1, 2, 3});
  Tensor t = Tensor::from_vector<float>({3}, {1, 0, 4});
  LossResult r = mean_squared_error(p, t);
  EXPECT_NEAR(r.value, (0 + 4 + 1) / 3.0, 1e-9);
  expect_gradient_matches(p, r.grad, [&](const Tensor& x) { return mean_squared_error(x, t).value; }, 1e-4);
}
