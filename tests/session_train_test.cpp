// Training through Session: which parameters get gradients, their values
// against finite differences of the whole graph, frozen parts, and errors.
#include <gtest/gtest.h>

#include "graft/loss.h"
#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
          std::map<std::string, Attribute> attrs = {}) {
  Node n;
  n.name = op + "_" + out[0];
  n.op_type = std::move(op);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attrs = std::move(attrs);
  return n;
}

// y = (x * w + b) * s, with w and b trainable and s frozen.
Graph affine_graph() {
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DType::kF32, std::vector<Dim>{{-1, "n"}, {3, ""}}});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  g.initializers["w"] = Tensor::from_vector<float>({3}, {0.5f, -1.0f, 2.0f});
  g.initializers["b"] = Tensor::from_vector<float>({3}, {0.1f, 0.2f, 0.3f});
  g.initializers["s"] = Tensor::from_vector<float>({1}, {3.0f});
  g.nodes = {node("Mul", {"x", "w"}, {"xw"}), node("Add", {"xw", "b"}, {"z"}),
             node("Mul", {"z", "s"}, {"y"})};
  g.trainable = {"w", "b"};
  return g;
}

double loss_of(Session& s, const Tensor& x, const Tensor& target) {
  return mean_squared_error(s.run({{"x", x}}).at("y"), target).value;
}

}  // namespace

TEST(SessionTraining, ParameterGradientsMatchFiniteDifferences) {
  Session s(affine_graph());
  s.set_training(true);
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, -1, 0.5f, 2});
  Tensor target = Tensor::from_vector<float>({2, 3}, {0, 1, 0, 1, 0, 1});
  ASSERT_EQ(s.parameters().size(), 2u);
  LossResult l = mean_squared_error(s.run({{"x", x}}).at("y"), target);
  s.backward({{"y", l.grad}});
  for (Parameter& p : s.parameters()) {
    for (int64_t i = 0; i < p.value.numel(); ++i) {
      float keep = p.value.data<float>()[i];
      const float h = 1e-3f;
      p.value.data<float>()[i] = keep + h;
      double up = loss_of(s, x, target);
      p.value.data<float>()[i] = keep - h;
      double down = loss_of(s, x, target);
      p.value.data<float>()[i] = keep;
      double numeric = (up - down) / (2 * h);  // float32 forward: ~1e-4 relative accuracy
      EXPECT_NEAR(p.grad.data<float>()[i], numeric, 1e-3 * std::max(1.0, std::abs(numeric)))
          << p.name << "[" << i << "]";
    }
  }
}

// Adds pass their output's gradient to both inputs without copying it (the
// same tensor); accumulating into it must then copy, never write through.
// y = (t * w) + t, t = (a + a) + a, a = x * w: a gets three shared
// gradients, t two, and the caller's output gradient must survive.
TEST(SessionTraining, SharedGradientsOfAddsAccumulateWithoutWritingThrough) {
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DType::kF32, std::vector<Dim>{{-1, "n"}, {3, ""}}});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  g.initializers["w"] = Tensor::from_vector<float>({3}, {0.5f, -1.0f, 2.0f});
  g.nodes = {node("Mul", {"x", "w"}, {"a"}),  node("Add", {"a", "a"}, {"r"}),
             node("Add", {"r", "a"}, {"t"}),  node("Mul", {"t", "w"}, {"u"}),
             node("Add", {"u", "t"}, {"y"})};
  g.trainable = {"w"};
  Session s(g);
  s.set_training(true);
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, -1, 0.5f, 2});
  Tensor target = Tensor::from_vector<float>({2, 3}, {0, 1, 0, 1, 0, 1});
  LossResult l = mean_squared_error(s.run({{"x", x}}).at("y"), target);
  const Tensor dy = l.grad.clone();
  s.backward({{"y", l.grad}});
  EXPECT_EQ(l.grad.to_vector<float>(), dy.to_vector<float>()) << "the output gradient was written";
  Parameter& w = s.parameters().at(0);
  for (int64_t i = 0; i < 3; ++i) {
    const float keep = w.value.data<float>()[i], h = 1e-3f;
    w.value.data<float>()[i] = keep + h;
    const double up = loss_of(s, x, target);
    w.value.data<float>()[i] = keep - h;
    const double down = loss_of(s, x, target);
    w.value.data<float>()[i] = keep;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(w.grad.data<float>()[i], numeric, 1e-3 * std::max(1.0, std::abs(numeric))) << i;
  }
}

TEST(Tensor, SharesStorageWhileACopyLives) {
  Tensor t(DType::kF32, {4});
  EXPECT_FALSE(t.shares_storage());
  {
    Tensor copy = t;
    EXPECT_TRUE(t.shares_storage());
    EXPECT_TRUE(t.reshaped({2, 2}).shares_storage());
  }
  EXPECT_FALSE(t.shares_storage());
  EXPECT_FALSE(Tensor::uninitialized(DType::kF32, {1 << 20}).shares_storage());
}

TEST(SessionTraining, GradientsAccumulateUntilZeroed) {
  Session s(affine_graph());
  s.set_training(true);
  Tensor x = Tensor::from_vector<float>({1, 3}, {1, 2, 3});
  Tensor g = Tensor::from_vector<float>({1, 3}, {1, 1, 1});
  s.run({{"x", x}});
  s.backward({{"y", g}});
  std::vector<float> once = s.parameters()[1].grad.to_vector<float>();
  s.run({{"x", x}});
  s.backward({{"y", g}});
  std::vector<float> twice = s.parameters()[1].grad.to_vector<float>();
  for (size_t i = 0; i < once.size(); ++i) EXPECT_FLOAT_EQ(twice[i], 2 * once[i]);
  // d y / d b = s = 3 for each element.
  EXPECT_FLOAT_EQ(once[0], 3.0f);
  s.zero_grad();
  EXPECT_EQ(s.parameters()[1].grad.to_vector<float>(), (std::vector<float>{0, 0, 0}));
}

TEST(SessionTraining, UpdatedParametersAreTheGraphsAndAreNotFolded) {
  // y = w * 2 depends on no input: shape inference must not fold the
  // trainable w into a constant, or updates would never show.
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DType::kF32, std::vector<Dim>{{1, ""}}});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  g.initializers["w"] = Tensor::from_vector<float>({1}, {1.0f});
  g.initializers["two"] = Tensor::from_vector<float>({1}, {2.0f});
  g.nodes = {node("Mul", {"w", "two"}, {"w2"}), node("Add", {"w2", "x"}, {"y"})};
  g.trainable = {"w"};
  Session s(g);
  Tensor x = Tensor::from_vector<float>({1}, {0});
  EXPECT_FLOAT_EQ(s.run({{"x", x}}).at("y").data<float>()[0], 2.0f);
  s.parameters()[0].value.data<float>()[0] = 5.0f;
  EXPECT_FLOAT_EQ(s.run({{"x", x}}).at("y").data<float>()[0], 10.0f);
  EXPECT_FLOAT_EQ(s.graph().initializers.at("w").data<float>()[0], 5.0f);
}

TEST(SessionTraining, BackwardNeedsATrainingRun) {
  Session s(affine_graph());
  Tensor x = Tensor::from_vector<float>({1, 3}, {1, 2, 3});
  s.run({{"x", x}});  // inference mode keeps nothing
  expect_error([&] { s.backward({{"y", x}}); }, ErrorKind::kInvalidArgument, "needs a run() in training mode");
  s.set_training(true);
  s.run({{"x", x}});
  expect_error([&] { s.backward({{"z", x}}); }, ErrorKind::kInvalidArgument, "'z' is not a graph output");
  expect_error([&] { s.backward({{"y", Tensor(DType::kF32, {2, 3})}}); }, ErrorKind::kInvalidArgument,
               "the gradient of 'y' is float32 2x3, the output is float32 1x3");
}

TEST(SessionTraining, UnknownOrNonFloatParameterIsAnError) {
  Graph g = affine_graph();
  g.trainable = {"ghost"};
  expect_error([&] { Session s(g); }, ErrorKind::kNotFound, "trainable parameter 'ghost'");
  g = affine_graph();
  g.initializers["w"] = Tensor::from_vector<int64_t>({3}, {1, 2, 3});
  g.trainable = {"w"};
  expect_error([&] { Session s(g); }, ErrorKind::kUnsupported, "trainable parameter 'w' is int64");
}

TEST(SessionTraining, OpWithoutGradientAfterParametersNamesTheNode) {
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DType::kF32, std::vector<Dim>{{1, ""}, {1, ""}, {2, ""}, {2, ""}}});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  g.initializers["w"] = Tensor::from_vector<float>({1}, {2.0f});
  g.initializers["scales"] = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
  g.nodes = {node("Mul", {"x", "w"}, {"xw"}),
             node("Resize", {"xw", "", "scales"}, {"y"}, {{"mode", std::string("nearest")}})};
  g.trainable = {"w"};
  Session s(g);
  expect_error([&] { s.run({{"x", Tensor(DType::kF32, {1, 1, 2, 2})}}); }, ErrorKind::kUnsupported,
               "node 'Resize_y' (Resize): op 'Resize' has no gradient");
}
