// Graph surgery on a real exported MobileNetV2 (reduced width): cut,
// extract, blocks, freezing, and new heads.
#include <gtest/gtest.h>

#include "graft/npy.h"
#include "graft/onnx.h"
#include "graft/optim.h"
#include "graft/loss.h"
#include "graft/session.h"
#include "graft/surgery.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

const std::string kModelDir = std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025";

Graph mobilenet() { return load_onnx(kModelDir + "/model.onnx"); }

float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float m = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  return m;
}

}  // namespace

TEST(Surgery, ResolvesValuesAndNodesAndSuggestsNames) {
  Graph g = mobilenet();
  EXPECT_EQ(resolve_value(g, "/GlobalAveragePool_output_0"), "/GlobalAveragePool_output_0");
  EXPECT_EQ(resolve_value(g, "/GlobalAveragePool"), "/GlobalAveragePool_output_0");
  expect_error([&] { resolve_value(g, "/GlobalAveragePol"); }, ErrorKind::kNotFound,
               "no node or value named '/GlobalAveragePol' in the model (nearest: /GlobalAveragePool");
}

TEST(Surgery, TrunkThenRestEqualsTheWholeModel) {
  Graph g = mobilenet();
  std::string cut = suggest_cut_points(g).at(0);
  Graph trunk = extract(g, {"input"}, {cut});
  Graph rest = extract(g, {cut}, {"logits"});
  EXPECT_LT(trunk.nodes.size(), g.nodes.size());
  EXPECT_EQ(trunk.nodes.size() + rest.nodes.size(), g.nodes.size());
  // The cut value becomes an input with a symbolic batch dimension.
  ASSERT_EQ(rest.inputs.size(), 1u);
  EXPECT_EQ((*rest.inputs[0].shape)[0].symbol, "batch");
  EXPECT_EQ((*rest.inputs[0].shape)[1].value, 1280);

  Tensor x = load_npy(kModelDir + "/input.npy");
  Tensor whole = Session(g).run({{"input", x}}).at("logits");
  Tensor features = Session(trunk).run({{"input", x}}).at(cut);
  Tensor composed = Session(rest).run({{cut, features}}).at("logits");
  EXPECT_EQ(max_abs_diff(whole, composed), 0.0f);
  // Weights are shared, not copied.
  const std::string w = trunk.nodes[0].inputs[1];
  EXPECT_EQ(trunk.initializers.at(w).raw(), g.initializers.at(w).raw());
}

TEST(Surgery, ExtractNeedingAnUnlistedInputIsAnError) {
  Graph g = mobilenet();
  std::string cut = suggest_cut_points(g).at(0);
  expect_error([&] { extract(g, {cut}, {"/features/features.1/conv/conv.0/conv.0.0/Conv_output_0"}); },
               ErrorKind::kInvalidArgument, "need the model input 'input'");
}

TEST(Surgery, BlocksFollowTheArchitecture) {
  Graph g = mobilenet();
  auto blocks = find_blocks(g);
  // MobileNetV2: stem, 17 inverted residual blocks (those without a skip
  // connection split into their expand / depthwise / project convs), the
  // last 1×1 conv, the classifier.
  EXPECT_GT(blocks.size(), 20u);
  size_t nodes = 0;
  for (const auto& b : blocks) nodes += b.size();
  EXPECT_EQ(nodes, g.nodes.size());
  // A residual block (features.3 has a skip connection) is one block.
  auto block_of = [&](const std::string& node) {
    for (size_t i = 0; i < blocks.size(); ++i)
      if (std::find(blocks[i].begin(), blocks[i].end(), node) != blocks[i].end()) return i;
    return blocks.size();
  };
  EXPECT_EQ(block_of("/features/features.3/conv/conv.0/conv.0.0/Conv"),
            block_of("/features/features.3/Add"));
  EXPECT_EQ(block_of("/classifier/classifier.1/Gemm"), blocks.size() - 1);
}

TEST(Surgery, UnfreezeLastBlocksAndPatterns) {
  Graph g = extract(mobilenet(), {"input"}, {suggest_cut_points(mobilenet()).at(0)});
  EXPECT_TRUE(g.trainable.empty());
  auto added = unfreeze_last_blocks(g, 1);
  ASSERT_FALSE(added.empty());
  for (const std::string& name : added) EXPECT_TRUE(g.trainable.count(name));
  // The last block of the trunk is the final 1×1 conv (features.18).
  const Node* last_conv = g.find_node("/features/features.18/features.18.0/Conv");
  ASSERT_NE(last_conv, nullptr);
  EXPECT_TRUE(g.trainable.count(last_conv->inputs[1]));
  EXPECT_FALSE(g.trainable.count(g.nodes[0].inputs[1]));  // the stem stays frozen
  expect_error([&] { unfreeze_last_blocks(g, 1000); }, ErrorKind::kInvalidArgument, "the model has");

  Graph h = mobilenet();
  int n = set_trainable(h, "classifier", true);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(h.trainable.size(), 2u);
  set_trainable(h, ".*", false);
  EXPECT_TRUE(h.trainable.empty());
  expect_error([&] { set_trainable(h, "(", true); }, ErrorKind::kInvalidArgument, "not a valid pattern");
}

TEST(Surgery, HeadsHaveTheRightShapeInitAndTrainability) {
  for (auto kind : {HeadOptions::Kind::kLinear, HeadOptions::Kind::kConv1x1}) {
    for (int64_t hidden : {0, 8}) {
      Graph g = mobilenet();
      std::string cut = suggest_cut_points(g).at(0);
      g = extract(g, {"input"}, {cut});
      HeadOptions o;
      o.classes = 4;
      o.kind = kind;
      o.hidden = hidden;
      o.dropout = hidden ? 0.2f : 0.0f;
      o.seed = 42;
      attach_head(g, cut, o);
      ASSERT_EQ(g.outputs.size(), 1u);
      EXPECT_EQ(g.outputs[0].name, "logits");
      Tensor x = load_npy(kModelDir + "/input.npy");
      Tensor y = Session(g).run({{"input", x}}).at("logits");
      EXPECT_EQ(y.shape(), (Shape{2, 4}));
      EXPECT_EQ(g.trainable.size(), hidden ? 4u : 2u);
      const Tensor& w = g.initializers.at("head/classifier/weight");
      float bound = 1.0f / std::sqrt(static_cast<float>(hidden ? hidden : 1280));
      for (float v : w.to_vector<float>()) EXPECT_LE(std::abs(v), bound);
      // Same seed, same weights.
      Graph g2 = extract(mobilenet(), {"input"}, {cut});
      attach_head(g2, cut, o);
      EXPECT_EQ(g2.initializers.at("head/classifier/weight").to_vector<float>(), w.to_vector<float>());
    }
  }
}

TEST(Surgery, HeadOnUnpooledFeaturesPoolsFirst) {
  Graph g = mobilenet();
  std::string block = "/features/features.16/Add_output_0";
  g = extract(g, {"input"}, {block});
  attach_head(g, block, HeadOptions{3});
  EXPECT_NE(g.find_node("head/pool"), nullptr);
  Tensor y = Session(g).run({{"input", load_npy(kModelDir + "/input.npy")}}).at("logits");
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  expect_error([&] { attach_head(g, "input", HeadOptions{3}); }, ErrorKind::kInvalidArgument,
               "the model already has a node or value named");
}

TEST(Surgery, FrozenTrunkHeadTrainingLowersTheLoss) {
  Graph g = mobilenet();
  std::string cut = suggest_cut_points(g).at(0);
  g = extract(g, {"input"}, {cut});
  attach_head(g, cut, HeadOptions{2});
  Session s(g);
  s.set_training(true);
  ASSERT_EQ(s.parameters().size(), 2u);
  auto opt = make_adam({});
  Tensor x = load_npy(kModelDir + "/input.npy");
  std::vector<int64_t> labels = {0, 1};
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    s.zero_grad();
    LossResult l = softmax_cross_entropy(s.run({{"input", x}}).at("logits"), labels);
    s.backward({{"logits", l.grad}});
    opt->step(s.parameters(), 0.01f);
    (step == 0 ? first : last) = l.value;
  }
  EXPECT_LT(last, first * 0.5) << "first " << first << ", last " << last;
  // The trunk did not change; the head did, in the session's graph.
  EXPECT_EQ(s.graph().initializers.at(g.nodes[0].inputs[1]).to_vector<float>(),
            g.initializers.at(g.nodes[0].inputs[1]).to_vector<float>());
}
