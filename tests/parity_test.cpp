// Training parity with PyTorch: the same small CNN, initial weights and
// batches, 200 steps of head-only training (BatchNorm frozen) and of full
// fine-tuning (BatchNorm in training mode), with SGD (momentum, weight
// decay) and Adam. Reference parameters were recorded by
// scripts/make_parity_reference.py with Debian's python3-torch.
#include <gtest/gtest.h>

#include <filesystem>

#include "graft/loss.h"
#include "graft/npy.h"
#include "graft/onnx.h"
#include "graft/optim.h"
#include "graft/session.h"
#include "graft/surgery.h"

using namespace graft;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(GRAFT_TEST_DATA) + "/parity/";
constexpr int kSteps = 200, kBatches = 4;

void check_parity(const std::string& mode, const std::string& optimizer) {
  Graph g = load_onnx(kDir + "model.onnx");
  set_trainable(g, mode == "head" ? "^fc\\." : ".", true);
  Session s(g);
  s.set_training(true);
  std::unique_ptr<Optimizer> opt = optimizer == "sgd" ? make_sgd({0.9f, 1e-4f, false}) : make_adam({});
  const float lr = optimizer == "sgd" ? 0.01f : 1e-3f;
  std::vector<Tensor> xs;
  std::vector<std::vector<int64_t>> ys;
  for (int k = 0; k < kBatches; ++k) {
    xs.push_back(load_npy(kDir + "x" + std::to_string(k) + ".npy"));
    ys.push_back(load_npy(kDir + "y" + std::to_string(k) + ".npy").to_vector<int64_t>());
  }
  for (int step = 0; step < kSteps; ++step) {
    s.zero_grad();
    LossResult l = softmax_cross_entropy(s.run({{"x", xs[step % kBatches]}}).at("logits"), ys[step % kBatches]);
    s.backward({{"logits", l.grad}});
    opt->step(s.parameters(), lr);
  }
  const std::string prefix = mode + "_" + optimizer + ".";
  int compared = 0;
  double worst = 0;
  for (const auto& entry : fs::directory_iterator(kDir)) {
    std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    std::string name = file.substr(prefix.size(), file.size() - prefix.size() - 4);
    Tensor want = load_npy(entry.path().string());
    const Tensor& got = s.graph().initializers.at(name);
    ASSERT_EQ(got.shape(), want.shape()) << name;
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      scale = std::max(scale, std::abs(static_cast<double>(want.data<float>()[i])));
      diff = std::max(diff, std::abs(static_cast<double>(got.data<float>()[i]) - want.data<float>()[i]));
    }
    double rel = diff / std::max(scale, 1e-12);
    worst = std::max(worst, rel);
    EXPECT_LE(rel, 1e-4) << prefix << name << ": max |graft - torch| " << diff << " (max |torch| " << scale << ")";
    ++compared;
  }
  EXPECT_EQ(compared, 12);  // 4 layers' weights and biases, 2 BatchNorms' running statistics
  std::printf("[ parity ] %-4s %-4s after %d steps: largest difference to PyTorch %.3g (relative to the tensor's max)\n",
              mode.c_str(), optimizer.c_str(), kSteps, worst);
}

}  // namespace

TEST(ParityWithPyTorch, HeadOnlySgd) { check_parity("head", "sgd"); }
TEST(ParityWithPyTorch, HeadOnlyAdam) { check_parity("head", "adam"); }
TEST(ParityWithPyTorch, FullFineTuneSgd) { check_parity("full", "sgd"); }
TEST(ParityWithPyTorch, FullFineTuneAdam) { check_parity("full", "adam"); }
