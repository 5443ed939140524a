// Optimizers against torch.optim's recorded parameters after five steps;
// schedules and clipping by hand.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "graft/optim.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

std::vector<float> floats(const nlohmann::json& j) {
  std::vector<double> d = j;
  return std::vector<float>(d.begin(), d.end());
}

std::vector<float> run(Optimizer& opt, float lr, const nlohmann::json& ref) {
  Parameters params = {{"w", Tensor::from_vector<float>({2, 3}, floats(ref["w0"])), Tensor()}};
  for (const auto& g : ref["grads"]) {
    params[0].grad = Tensor::from_vector<float>({2, 3}, floats(g));
    opt.step(params, lr);
  }
  return params[0].value.to_vector<float>();
}

}  // namespace

TEST(Optimizers, MatchTorchAfterFiveSteps) {
  std::ifstream f(std::string(GRAFT_TEST_DATA) + "/torch_reference.json");
  auto ref = nlohmann::json::parse(f);
  struct Case {
    const char* name;
    std::unique_ptr<Optimizer> opt;
    float lr;
  };
  std::vector<Case> cases;
  cases.push_back({"sgd", make_sgd({}), 0.1f});
  cases.push_back({"sgd_momentum_wd", make_sgd({0.9f, 0.01f, false}), 0.1f});
  cases.push_back({"sgd_nesterov", make_sgd({0.9f, 0, true}), 0.1f});
  cases.push_back({"adam", make_adam({}), 0.01f});
  cases.push_back({"adam_wd", make_adam({0.9f, 0.999f, 1e-8f, 0.1f, false}), 0.01f});
  cases.push_back({"adamw", make_adam({0.9f, 0.999f, 1e-8f, 0.1f, true}), 0.01f});
  for (Case& c : cases) {
    std::vector<float> got = run(*c.opt, c.lr, ref);
    std::vector<float> want = floats(ref["optim"][c.name]);
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(1.0f, std::abs(want[i]))) << c.name << " " << i;
  }
}

// A parameter large enough to be shared among the threads (and updated
// with vector instructions) takes each value to where torch takes it.
TEST(Optimizers, AdamUpdatesALargeParameterValueByValueAsTorch) {
  std::ifstream f(std::string(GRAFT_TEST_DATA) + "/torch_reference.json");
  auto ref = nlohmann::json::parse(f);
  auto tiled = [](const std::vector<float>& six, int64_t copies) {
    std::vector<float> all;
    for (int64_t c = 0; c < copies; ++c) all.insert(all.end(), six.begin(), six.end());
    return Tensor::from_vector<float>({copies, 6}, all);
  };
  const int64_t copies = 40001;  // 240006 values: past the 2^16 of one thread, not a multiple of 16
  for (bool decoupled : {false, true}) {
    auto opt = make_adam({0.9f, 0.999f, 1e-8f, 0.1f, decoupled});
    Parameters params = {{"w", tiled(floats(ref["w0"]), copies), Tensor()}};
    for (const auto& g : ref["grads"]) {
      params[0].grad = tiled(floats(g), copies);
      opt->step(params, 0.01f);
    }
    std::vector<float> want = floats(ref["optim"][decoupled ? "adamw" : "adam_wd"]);
    std::vector<float> got = params[0].value.to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i % 6], 1e-6 * std::max(1.0f, std::abs(want[i % 6])))
          << (decoupled ? "adamw" : "adam_wd") << " value " << i;
  }
}

TEST(Optimizers, StateRoundTripContinuesIdentically) {
  std::ifstream f(std::string(GRAFT_TEST_DATA) + "/torch_reference.json");
  auto ref = nlohmann::json::parse(f);
  for (bool adam : {false, true}) {
    auto make = [&] { return adam ? make_adam({}) : make_sgd({0.9f, 0, false}); };
    auto a = make();
    Parameters p = {{"w", Tensor::from_vector<float>({2, 3}, floats(ref["w0"])), Tensor()}};
    p[0].grad = Tensor::from_vector<float>({2, 3}, floats(ref["grads"][0]));
    a->step(p, 0.01f);
    Parameters q = {{"w", p[0].value.clone(), p[0].grad}};
    auto b = make();
    b->load_state(a->state());
    a->step(p, 0.01f);
    b->step(q, 0.01f);
    EXPECT_EQ(p[0].value.to_vector<float>(), q[0].value.to_vector<float>());
  }
}

TEST(Schedule, EveryKind) {
  Schedule s;
  s.base_lr = 1.0f;
  EXPECT_FLOAT_EQ(s.lr_at(100), 1.0f);
  s.kind = Schedule::Kind::kStep;
  s.step_size = 10;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(s.lr_at(9), 1.0f);
  EXPECT_FLOAT_EQ(s.lr_at(25), 0.25f);
  s.kind = Schedule::Kind::kMultiStep;
  s.milestones = {5, 20};
  EXPECT_FLOAT_EQ(s.lr_at(4), 1.0f);
  EXPECT_FLOAT_EQ(s.lr_at(5), 0.5f);
  EXPECT_FLOAT_EQ(s.lr_at(20), 0.25f);
  s.kind = Schedule::Kind::kCosine;
  s.warmup_steps = 4;
  s.total_steps = 104;
  s.min_lr = 0.0f;
  EXPECT_FLOAT_EQ(s.lr_at(0), 0.25f);
  EXPECT_FLOAT_EQ(s.lr_at(3), 1.0f);
  EXPECT_NEAR(s.lr_at(54), 0.5f, 1e-6);
  EXPECT_NEAR(s.lr_at(104), 0.0f, 1e-6);
  // The seed's "inverse" schedule: base * (1 + gamma * step) ^ -power.
  s.kind = Schedule::Kind::kInverse;
  s.base_lr = 1e-4f;
  s.gamma = 1e-4f;
  s.power = 0.75f;
  EXPECT_NEAR(s.lr_at(10000), 1e-4 * std::pow(2.0, -0.75), 1e-10);
  EXPECT_EQ(parse_schedule_kind("cosine"), Schedule::Kind::kCosine);
  expect_error([] { parse_schedule_kind("zigzag"); }, ErrorKind::kInvalidArgument, "unknown schedule 'zigzag'");
}

TEST(ClipGradNorm, ScalesOnlyAboveTheLimit) {
  Parameters p = {{"a", Tensor(DType::kF32, {2}), Tensor::from_vector<float>({2}, {3, 0})},
                  {"b", Tensor(DType::kF32, {1}), Tensor::from_vector<float>({1}, {4})}};
  EXPECT_NEAR(clip_grad_norm(p, 10.0), 5.0, 1e-9);
  EXPECT_FLOAT_EQ(p[0].grad.data<float>()[0], 3.0f);
  EXPECT_NEAR(clip_grad_norm(p, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(p[0].grad.data<float>()[0], 0.6f, 1e-5);
  EXPECT_NEAR(p[1].grad.data<float>()[0], 0.8f, 1e-5);
}
