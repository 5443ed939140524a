// The training loop on a small separable problem: it learns, is
// deterministic, resumes exactly, stops early, and fails clearly.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "graft/checkpoint.h"
#include "graft/fit.h"
#include "graft/surgery.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

// Three Gaussian clusters in 4-D.
void make_data(int64_t n, uint64_t seed, Tensor& x, std::vector<int64_t>& y) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0, 0.4f);
  x = Tensor(DType::kF32, {n, 4});
  y.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = i % 3;
    for (int d = 0; d < 4; ++d) x.data<float>()[i * 4 + d] = (d == y[i] ? 2.0f : 0.0f) + noise(rng);
  }
}

Graph head_model(int64_t hidden = 0) {
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"features", DType::kF32, std::vector<Dim>{{-1, "batch"}, {4, ""}}});
  HeadOptions h;
  h.classes = 3;
  h.hidden = hidden;
  h.dropout = hidden ? 0.3f : 0.0f;
  h.seed = 1;
  attach_head(g, "features", h);
  return g;
}

std::vector<float> all_params(Session& s) {
  std::vector<float> v;
  for (const Parameter& p : s.parameters())
    for (float f : p.value.to_vector<float>()) v.push_back(f);
  return v;
}

struct Data {
  Tensor x, vx;
  std::vector<int64_t> y, vy;
  Data() {
    make_data(90, 1, x, y);
    make_data(30, 2, vx, vy);
  }
};

}  // namespace

TEST(Fit, LearnsAndKeepsTheBestEpoch) {
  Data d;
  Session s(head_model());
  FitOptions o;
  o.epochs = 15;
  o.batch = 16;
  o.lr = 0.05f;
  FitResult r = fit(s, d.x, d.y, d.vx, d.vy, o);
  ASSERT_EQ(r.history.size(), 15u);
  EXPECT_GE(r.best.accuracy, 0.95);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  double best = 0;
  for (const EpochRecord& e : r.history) best = std::max(best, e.eval_accuracy);
  EXPECT_EQ(r.best.accuracy, best);  // the session holds the best epoch's weights
  EXPECT_EQ(r.history.back().step, 15 * 6);
}

TEST(Fit, SameSeedSameResultWithDropout) {
  Data d;
  FitOptions o;
  o.epochs = 3;
  o.seed = 7;
  Session a(head_model(8)), b(head_model(8));
  fit(a, d.x, d.y, d.vx, d.vy, o);
  fit(b, d.x, d.y, d.vx, d.vy, o);
  EXPECT_EQ(all_params(a), all_params(b));
}

TEST(Fit, ResumeContinuesExactly) {
  Data d;
  std::string ckpt = test::temp_path("graft_fit_resume.ckpt").string();
  fs::remove(ckpt);
  FitOptions o;
  o.epochs = 6;
  o.seed = 3;
  o.optimizer = "sgd";
  o.schedule.kind = Schedule::Kind::kCosine;
  o.schedule.total_steps = 36;
  Session whole(head_model(8));
  FitResult full = fit(whole, d.x, d.y, d.vx, d.vy, o);

  o.checkpoint = ckpt;
  o.resume = true;
  o.epochs = 3;  // "killed" after epoch 3
  Session first(head_model(8));
  fit(first, d.x, d.y, d.vx, d.vy, o);
  o.epochs = 6;
  Session second(head_model(8));  // a fresh process: initial weights again
  FitResult resumed = fit(second, d.x, d.y, d.vx, d.vy, o);
  EXPECT_TRUE(resumed.resumed);
  ASSERT_EQ(resumed.history.size(), 6u);
  EXPECT_EQ(all_params(second), all_params(whole));
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(resumed.history[i].train_loss, full.history[i].train_loss);
  EXPECT_EQ(resumed.best_epoch, full.best_epoch);

  // A checkpoint of another model is refused.
  Session other(head_model(0));
  expect_error([&] { fit(other, d.x, d.y, d.vx, d.vy, o); }, ErrorKind::kInvalidArgument,
               "belongs to a different model");
  fs::remove(ckpt);
}

TEST(Fit, StopsEarlyWithoutProgress) {
  Data d;
  std::vector<int64_t> shuffled = d.vy;
  std::rotate(shuffled.begin(), shuffled.begin() + 1, shuffled.end());  // labels that cannot be learned
  FitOptions o;
  o.epochs = 50;
  o.early_stop = 3;
  Session s(head_model());
  FitResult r = fit(s, d.x, d.y, d.vx, shuffled, o);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_LT(r.history.size(), 50u);
  EXPECT_EQ(static_cast<int64_t>(r.history.size()), r.best_epoch + 3);
}

TEST(Fit, NonFiniteLossNamesTheStepAndKeepsTheCheckpoint) {
  Data d;
  std::string ckpt = test::temp_path("graft_fit_nan.ckpt").string();
  fs::remove(ckpt);
  FitOptions o;
  o.epochs = 1;
  o.checkpoint = ckpt;
  Session s(head_model());
  fit(s, d.x, d.y, d.vx, d.vy, o);
  ASSERT_TRUE(fs::exists(ckpt));
  Checkpoint before = load_checkpoint(ckpt);
  Tensor bad = d.x.clone();
  bad.data<float>()[5] = std::numeric_limits<float>::infinity();
  o.epochs = 2;
  o.resume = true;
  o.batch = 90;  // epoch 1 took 3 steps of 32; epoch 2 is one step, with the bad sample
  Session t(head_model());
  expect_error([&] { fit(t, bad, d.y, d.vx, d.vy, o); }, ErrorKind::kInvalidArgument,
               "the loss became NaN at step 4 (epoch 2); the last good checkpoint is kept in " + ckpt);
  EXPECT_EQ(load_checkpoint(ckpt).step, before.step);
  fs::remove(ckpt);
}
