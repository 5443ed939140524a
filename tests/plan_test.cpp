// The execution plan (src/graph/plan.h): fused convolutions, channels-last
// chains and the arena must compute what the reference kernels compute,
// node by node, and keep what a run returns intact across runs.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_test_util.h"
#include "graft/backend.h"
#include "graft/session.h"
#include "graph/plan.h"

namespace graft {
namespace {

using test::uniform;

Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
          std::map<std::string, Attribute> attrs = {}) {
  Node n;
  n.op_type = op;
  n.name = out[0] + "_node";
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attrs = std::move(attrs);
  return n;
}

// Builds graphs value by value: conv(name, input, out_channels, ...) adds a
// Conv with random weights and bias.
struct GraphBuilder {
  Graph g;
  uint32_t seed = 1;
  GraphBuilder(Shape input) {
    g.opset = 13;
    std::vector<Dim> dims;
    for (int64_t d : input) dims.push_back({d, ""});
    g.inputs.push_back({"x", DType::kF32, dims});
    channels["x"] = input[1];
  }
  std::map<std::string, int64_t> channels;
  std::string conv(const std::string& name, const std::string& in, int64_t out, int64_t k,
                   int64_t stride = 1, bool depthwise = false, int64_t pad = -1) {
    int64_t c = channels.at(in);
    if (pad < 0) pad = k / 2;
    int64_t group = depthwise ? c : 1;
    float bound = 1.0f / std::sqrt(static_cast<float>(c / group * k * k));
    g.initializers[name + "_w"] = uniform({out, c / group, k, k}, seed++, -bound, bound);
    g.initializers[name + "_b"] = uniform({out}, seed++, -0.1f, 0.1f);
    g.nodes.push_back(node("Conv", {in, name + "_w", name + "_b"}, {name},
                           {{"kernel_shape", std::vector<int64_t>{k, k}},
                            {"pads", std::vector<int64_t>{pad, pad, pad, pad}},
                            {"strides", std::vector<int64_t>{stride, stride}},
                            {"group", group}}));
    channels[name] = out;
    return name;
  }
  std::string batch_norm(const std::string& name, const std::string& in) {
    int64_t c = channels.at(in);
    g.initializers[name + "_scale"] = uniform({c}, seed++, 0.5f, 1.5f);
    g.initializers[name + "_shift"] = uniform({c}, seed++);
    g.initializers[name + "_mean"] = uniform({c}, seed++);
    g.initializers[name + "_var"] = uniform({c}, seed++, 0.5f, 2.0f);
    g.nodes.push_back(node("BatchNormalization",
                           {in, name + "_scale", name + "_shift", name + "_mean", name + "_var"},
                           {name}));
    channels[name] = c;
    return name;
  }
  std::string relu6(const std::string& name, const std::string& in) {
    g.initializers["zero"] = Tensor::scalar(0.0f);
    g.initializers["six"] = Tensor::scalar(6.0f);
    g.nodes.push_back(node("Clip", {in, "zero", "six"}, {name}));
    channels[name] = channels.at(in);
    return name;
  }
  std::string unary(const std::string& op, const std::string& name, const std::string& in) {
    g.nodes.push_back(node(op, {in}, {name}));
    channels[name] = channels.at(in);
    return name;
  }
  std::string add(const std::string& name, const std::string& a, const std::string& b) {
    g.nodes.push_back(node("Add", {a, b}, {name}));
    channels[name] = channels.at(a);
    return name;
  }
  void output(const std::string& name) { g.outputs.push_back({name, DType::kF32, std::nullopt}); }
};

// A MobileNetV2-like stack: stem, an inverted residual block with a skip,
// one without, then pooling; the block input is also a graph output.
GraphBuilder mobile_block_graph() {
  GraphBuilder b({2, 3, 20, 20});
  std::string s = b.relu6("stem", b.batch_norm("stem_bn", b.conv("stem_conv", "x", 16, 3, 2)));
  std::string e = b.relu6("e1", b.conv("e1_conv", s, 48, 1));
  std::string d = b.relu6("d1", b.batch_norm("d1_bn", b.conv("d1_conv", e, 48, 3, 1, true)));
  std::string p = b.add("res1", b.conv("p1_conv", d, 16, 1), s);
  std::string e2 = b.unary("HardSwish", "e2", b.conv("e2_conv", p, 32, 1));
  std::string d2 = b.unary("Relu", "d2", b.conv("d2_conv", e2, 32, 3, 2, true));
  std::string p2 = b.conv("p2_conv", d2, 24, 1);
  b.g.nodes.push_back(node("GlobalAveragePool", {p2}, {"pooled"}));
  b.output("pooled");
  b.output(p);
  return b;
}

std::map<std::string, Tensor> run_with(bool reference, const Graph& g, const Tensor& x,
                                       std::map<std::string, Session::OpTime>* profile = nullptr) {
  set_reference_kernels(reference);
  Session s(g);
  s.set_profiling(true);
  auto out = s.run({{"x", x}});
  if (profile) *profile = s.profile();
  set_reference_kernels(false);
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  float scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::abs(want.data<float>()[i]));
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4f * std::max(1.0f, scale))
        << what << " element " << i;
}

TEST(ExecutionPlan, FusedChainMatchesTheReferenceKernels) {
  GraphBuilder b = mobile_block_graph();
  Tensor x = uniform({2, 3, 20, 20}, 99);
  std::map<std::string, Session::OpTime> profile;
  auto fast = run_with(false, b.g, x, &profile);
  auto ref = run_with(true, b.g, x);
  for (const char* name : {"pooled", "res1"}) expect_close(fast.at(name), ref.at(name), name);
  // The plan fused what it could: BatchNorm and Clip into the stem, the
  // residual Add into the projection, HardSwish and Relu into theirs.
  EXPECT_TRUE(profile.count("Conv+BatchNormalization+Clip")) << "stem not fused";
  EXPECT_TRUE(profile.count("Conv+Add")) << "residual not fused";
  EXPECT_TRUE(profile.count("Conv+HardSwish"));
  EXPECT_TRUE(profile.count("Conv+Relu"));
  EXPECT_FALSE(profile.count("Clip")) << "a Clip ran by itself";
}

// A 3x3 depthwise Conv reading a large pointwise output is fused into the
// pointwise convolution as oneDNN's depthwise post-op, BatchNorms folded
// into each; where oneDNN has no fast kernel for that (small shapes), the
// two stay separate steps. Both compute what the reference kernels do.
TEST(ExecutionPlan, DepthwiseConvJoinsThePointwiseOneBeforeIt) {
  const size_t threshold = depthwise_fusion_bytes();
  set_depthwise_fusion_bytes(0);
  for (int64_t stride : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << "stride " << stride);
    GraphBuilder b({2, 16, 112, 112});
    std::string e = b.relu6("e", b.batch_norm("e_bn", b.conv("e_conv", "x", 96, 1)));
    std::string d = b.relu6("d", b.batch_norm("d_bn", b.conv("d_conv", e, 96, 3, stride, true)));
    b.output(b.conv("p_conv", d, 24, 1));
    Tensor x = uniform({2, 16, 112, 112}, 12);
    std::map<std::string, Session::OpTime> profile;
    auto fast = run_with(false, b.g, x, &profile);
    expect_close(fast.at("p_conv"), run_with(true, b.g, x).at("p_conv"), "p_conv");
    EXPECT_TRUE(profile.count("Conv+BatchNormalization+Clip+Conv+BatchNormalization+Clip"))
        << "not fused";
  }
  GraphBuilder small = mobile_block_graph();
  Tensor x = uniform({2, 3, 20, 20}, 13);
  std::map<std::string, Session::OpTime> profile;
  auto fast = run_with(false, small.g, x, &profile);
  expect_close(fast.at("pooled"), run_with(true, small.g, x).at("pooled"), "small");
  EXPECT_TRUE(profile.count("Conv+Clip")) << "expansion apart from its depthwise convolution";
  EXPECT_TRUE(profile.count("Conv+BatchNormalization+Clip"));
  set_depthwise_fusion_bytes(threshold);
}

TEST(ExecutionPlan, OutputsOfOneRunSurviveTheNext) {
  GraphBuilder b = mobile_block_graph();
  Session s(b.g);
  Tensor x1 = uniform({2, 3, 20, 20}, 1), x2 = uniform({2, 3, 20, 20}, 2);
  auto first = s.run({{"x", x1}});
  Tensor kept = first.at("pooled").clone();
  auto second = s.run({{"x", x2}});
  expect_close(first.at("pooled"), kept, "first output after a second run");
  expect_close(second.at("pooled"), run_with(true, b.g, x2).at("pooled"), "second run");
  EXPECT_NE(first.at("pooled").data<float>()[0], second.at("pooled").data<float>()[0]);
}

// Two residual blocks in a row, then the stem added again: the second
// projection's sum is written where its addend (the first's) lay, which no
// later step reads; the first's is not written over the stem, which the
// last Add still reads. The result is still the reference kernels'.
TEST(ExecutionPlan, ResidualSumIsWrittenOverItsAddendWhenNothingReadsItLater) {
  GraphBuilder b({2, 3, 20, 20});
  std::string s = b.relu6("stem", b.conv("stem_conv", "x", 16, 3, 2));
  std::string e1 = b.relu6("e1", b.conv("e1_conv", s, 32, 1));
  std::string r1 = b.add("res1", b.conv("p1_conv", e1, 16, 1), s);
  std::string e2 = b.relu6("e2", b.conv("e2_conv", r1, 32, 1));
  std::string r2 = b.add("res2", b.conv("p2_conv", e2, 16, 1), r1);
  b.g.nodes.push_back(node("GlobalAveragePool", {b.add("late", r2, s)}, {"pooled"}));
  b.output("pooled");

  const auto infos = infer_shapes(b.g, {{"x", {2, 3, 20, 20}}});
  const std::set<std::string> none;
  const size_t n = b.g.nodes.size();
  ExecutionPlan plan = make_plan({b.g, infos, none, std::vector<bool>(n), std::vector<bool>(n), {}});
  ASSERT_TRUE(plan.offsets.count(s) && plan.offsets.count(r1) && plan.offsets.count(r2));
  EXPECT_EQ(plan.offsets.at(r2), plan.offsets.at(r1));
  EXPECT_NE(plan.offsets.at(r1), plan.offsets.at(s));

  Tensor x = uniform({2, 3, 20, 20}, 5);
  std::map<std::string, Session::OpTime> profile;
  auto fast = run_with(false, b.g, x, &profile);
  EXPECT_EQ(profile.at("Conv+Add").calls, 2);
  expect_close(fast.at("pooled"), run_with(true, b.g, x).at("pooled"), "pooled");
}

// An Add whose other operand is computed after the convolution cannot be
// fused into it; a convolution read by two nodes keeps its output.
TEST(ExecutionPlan, UnfusableNeighboursStillComputeTheSame) {
  GraphBuilder b({1, 8, 9, 9});
  std::string c1 = b.conv("c1", "x", 8, 3);
  std::string c2 = b.conv("c2", "x", 8, 1);  // computed after c1
  std::string sum = b.add("sum", c1, c2);
  std::string r = b.unary("Relu", "r", c2);  // c2 read twice: not fused into sum
  b.add("out", sum, r);
  b.output("out");
  b.output(c1);
  Tensor x = uniform({1, 8, 9, 9}, 5);
  auto fast = run_with(false, b.g, x), ref = run_with(true, b.g, x);
  expect_close(fast.at("out"), ref.at("out"), "out");
  expect_close(fast.at("c1"), ref.at("c1"), "c1");
}

// A TF.js-style stem: NHWC input transposed, zero-padded, then a valid
// strided convolution. The Transpose and the Pad join the convolution's
// step; Pads the Conv cannot do (a non-zero value, channel padding) run
// by themselves.
TEST(ExecutionPlan, TransposeAndZeroPadJoinTheConvolution) {
  GraphBuilder b({2, 11, 11, 3});  // NHWC
  b.g.nodes.push_back(node("Transpose", {"x"}, {"nchw"}, {{"perm", std::vector<int64_t>{0, 3, 1, 2}}}));
  b.channels["nchw"] = 3;
  auto pad = [&](const std::string& name, const std::string& in, std::vector<int64_t> amounts,
                 float value) {
    b.g.initializers[name + "_amounts"] = Tensor::from_vector<int64_t>({8}, amounts);
    b.g.initializers[name + "_value"] = Tensor::scalar(value);
    b.g.nodes.push_back(node("Pad", {in, name + "_amounts", name + "_value"}, {name}));
    b.channels[name] = b.channels.at(in) + amounts[1] + amounts[5];
    return name;
  };
  std::string p1 = pad("p1", "nchw", {0, 0, 0, 0, 0, 0, 1, 1}, 0.0f);
  b.conv("c1", p1, 8, 3, 2, false, 0);
  std::string r1 = b.relu6("r1", b.batch_norm("bn1", "c1"));
  std::string p2 = pad("p2", r1, {0, 0, 1, 1, 0, 0, 1, 1}, 0.5f);  // non-zero value
  b.conv("c2", p2, 8, 3);
  std::string p3 = pad("p3", "c2", {0, 1, 0, 0, 0, 1, 0, 0}, 0.0f);  // channels
  b.conv("c3", p3, 4, 1);
  b.output("c3");
  Tensor x = uniform({2, 11, 11, 3}, 17);
  std::map<std::string, Session::OpTime> profile;
  auto fast = run_with(false, b.g, x, &profile);
  auto ref = run_with(true, b.g, x);
  expect_close(fast.at("c3"), ref.at("c3"), "c3");
  EXPECT_TRUE(profile.count("Transpose+Pad+Conv+BatchNormalization+Clip"));
  EXPECT_EQ(profile["Pad"].calls, 2);
}

// A GlobalAveragePool reads the convolution before it as that one stores it,
// channels-last, with no reorder between; a second reader that needs NCHW
// (a graph output) keeps the value NCHW. Both compute what the reference
// kernels do (two images of 64x32x16: the pooling runs on two threads).
TEST(ExecutionPlan, GlobalAveragePoolReadsAConvolutionsOutputChannelsLast) {
  for (bool also_output : {false, true}) {
    GraphBuilder b({2, 8, 32, 16});
    std::string h = b.relu6("h", b.conv("h_conv", "x", 16, 3));
    std::string y = b.unary("Relu", "y", b.conv("y_conv", h, 64, 1));
    b.g.nodes.push_back(node("GlobalAveragePool", {y}, {"pooled"}));
    b.output("pooled");
    if (also_output) b.output(y);

    const auto infos = infer_shapes(b.g, {{"x", {2, 8, 32, 16}}});
    const std::set<std::string> none;
    const size_t n = b.g.nodes.size();
    ExecutionPlan plan =
        make_plan({b.g, infos, none, std::vector<bool>(n), std::vector<bool>(n), {}});
    EXPECT_EQ(plan.channels_last.count(y), also_output ? 0u : 1u);
    ASSERT_EQ(plan.steps.back().node, static_cast<int>(n - 1));
    EXPECT_EQ(plan.steps.back().x_channels_last, !also_output);

    Tensor x = uniform({2, 8, 32, 16}, 11);
    auto fast = run_with(false, b.g, x);
    auto ref = run_with(true, b.g, x);
    expect_close(fast.at("pooled"), ref.at("pooled"), "pooled");
    if (also_output) expect_close(fast.at(y), ref.at(y), y);
  }
}

// A convolution whose output nothing reads (dead code in a model file) is
// planned and run like any other.
TEST(ExecutionPlan, UnusedConvolutionOutput) {
  GraphBuilder b({1, 4, 6, 6});
  b.conv("dead", "x", 4, 3);
  b.unary("Relu", "live", b.conv("c", "x", 4, 1));
  b.output("live");
  Tensor x = uniform({1, 4, 6, 6}, 3);
  expect_close(run_with(false, b.g, x).at("live"), run_with(true, b.g, x).at("live"), "live");
}

// Training: the trainable part runs node by node (backward reads its
// values); the frozen trunk before it is fused. Gradients equal the
// reference kernels'.
TEST(ExecutionPlan, TrainingKeepsWhatBackwardReads) {
  GraphBuilder b({2, 3, 12, 12});
  std::string t = b.relu6("t", b.batch_norm("t_bn", b.conv("t_conv", "x", 8, 3)));
  std::string h = b.relu6("h", b.conv("h_conv", t, 4, 1));
  b.g.nodes.push_back(node("GlobalAveragePool", {h}, {"y"}));
  b.output("y");
  b.g.trainable = {"h_conv_w", "h_conv_b"};
  Tensor x = uniform({2, 3, 12, 12}, 7);
  std::vector<Tensor> grads[2];
  for (bool reference : {false, true}) {
    set_reference_kernels(reference);
    Session s(b.g);
    s.set_training(true);
    s.set_profiling(true);
    auto y = s.run({{"x", x}});
    s.backward({{"y", Tensor::from_vector<float>({2, 4, 1, 1}, {1, 2, 3, 4, -1, -2, -3, -4})}});
    for (Parameter& p : s.parameters()) grads[reference].push_back(p.grad.clone());
    if (!reference) {
      EXPECT_TRUE(s.profile().count("Conv+BatchNormalization+Clip")) << "frozen trunk not fused";
      EXPECT_TRUE(s.profile().count("Clip")) << "the trained part should run node by node";
    }
    set_reference_kernels(false);
  }
  ASSERT_EQ(grads[0].size(), 2u);
  for (size_t i = 0; i < 2; ++i) expect_close(grads[0][i], grads[1][i], "gradient");
}

// Wide scales and shifts for the BatchNormalizations named: the normalised
// values cross both of ReLU6's bounds.
void widen_norms(GraphBuilder& b, std::initializer_list<const char*> norms, uint32_t seed) {
  for (const char* bn : norms) {
    const int64_t c = b.g.initializers.at(std::string(bn) + "_scale").numel();
    b.g.initializers[std::string(bn) + "_scale"] = uniform({c}, seed, 2.0f, 5.0f);
    b.g.initializers[std::string(bn) + "_shift"] = uniform({c}, seed + 1, -1.0f, 4.0f);
  }
}

// Trains b's graph (every weight, scale and shift trainable) two steps with
// the fast kernels and with the reference ones; outputs, every gradient and
// the running statistics must agree. Returns the fast run's profile.
std::map<std::string, Session::OpTime> train_both_ways(const GraphBuilder& b, const Tensor& x,
                                              const TensorMap& output_grads) {
  Graph trained = b.g;
  for (const auto& [name, t] : trained.initializers)
    if (name.find("_w") != std::string::npos || name.find("_scale") != std::string::npos ||
        name.find("_shift") != std::string::npos)
      trained.trainable.insert(name);
  std::map<std::string, Tensor> results[2];
  std::map<std::string, Session::OpTime> profile;
  for (bool reference : {false, true}) {
    set_reference_kernels(reference);
    Graph g = trained;  // a copy of its own: training updates the running statistics in place
    for (auto& [name, t] : g.initializers) t = t.clone();
    Session s(g);
    s.set_training(true);
    s.set_profiling(true);
    for (int step = 0; step < 2; ++step) {
      s.zero_grad();
      auto out = s.run({{"x", x}});
      s.backward(output_grads);
      for (const auto& [name, t] : out) results[reference][name + std::to_string(step)] = t.clone();
    }
    for (Parameter& p : s.parameters()) results[reference][p.name + " grad"] = p.grad.clone();
    for (const std::string& v : s.variables()) results[reference][v] = s.graph().initializers.at(v).clone();
    if (!reference) profile = s.profile();
    set_reference_kernels(false);
  }
  EXPECT_EQ(results[0].size(), results[1].size());
  for (const auto& [name, want] : results[1]) expect_close(results[0].at(name), want, name);
  return profile;
}

// The plan of b's graph in training: every node trained, every
// BatchNormalization with the batch's statistics, every value kept for the
// backward.
ExecutionPlan training_plan(const GraphBuilder& b, const Shape& x) {
  std::set<std::string> variables;
  for (const auto& [name, t] : b.g.initializers)
    if (name.find("_mean") != std::string::npos || name.find("_var") != std::string::npos)
      variables.insert(name);
  const auto infos = infer_shapes(b.g, {{"x", x}}, {}, variables);
  const size_t n = b.g.nodes.size();
  PlanRequest request{b.g, infos, variables, std::vector<bool>(n, true), std::vector<bool>(n), {}};
  for (size_t i = 0; i < n; ++i) {
    request.batch_statistics[i] = b.g.nodes[i].op_type == "BatchNormalization";
    for (const std::string& v : b.g.nodes[i].inputs) request.outliving.insert(v);
    for (const std::string& v : b.g.nodes[i].outputs) request.outliving.insert(v);
  }
  return make_plan(request);
}

// Training: a BatchNormalization using batch statistics and the Clip or
// Relu alone reading it run as one step, forward and backward. Outputs,
// every gradient and the running statistics after two steps equal the
// reference kernels', node by node. BatchNormalizations whose output is read
// twice, feeds an Add, or is a graph output are not fused, but are steps of
// their own all the same: their backward reads the statistics the forward
// kept.
TEST(ExecutionPlan, TrainingFusesBatchNormWithTheActivationAfterIt) {
  GraphBuilder b({4, 3, 10, 10});
  std::string c1 = b.relu6("c1", b.batch_norm("c1_bn", b.conv("c1_conv", "x", 8, 3)));
  std::string r2 = b.unary("Relu", "r2", b.batch_norm("r2_bn", b.conv("r2_conv", c1, 8, 3, 2)));
  std::string twice = b.batch_norm("twice_bn", b.conv("twice_conv", r2, 8, 1));
  std::string sum = b.add("sum", b.relu6("a", twice), b.unary("Sigmoid", "s", twice));
  std::string last = b.batch_norm("last_bn", b.conv("last_conv", sum, 6, 1));
  b.g.nodes.push_back(node("GlobalAveragePool", {last}, {"y"}));
  b.output("y");
  b.output(last);
  widen_norms(b, {"c1_bn"}, 50);
  Tensor dlast = uniform({4, 6, 5, 5}, 11);
  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({4, 3, 10, 10}, 9), {{"y", uniform({4, 6, 1, 1}, 10)}, {last, dlast}});
  for (const char* fused : {"BatchNormalization+Clip", "BatchNormalization+Relu",
                            "BatchNormalization+Clip backward", "BatchNormalization+Relu backward"})
    EXPECT_EQ(profile.count(fused), 1u) << fused;
  EXPECT_EQ(profile.at("BatchNormalization+Clip").calls, 2) << "c1 only: not a, read twice";
  EXPECT_EQ(profile.at("BatchNormalization").calls, 4) << "twice_bn and last_bn, two steps";
  std::map<std::string, std::pair<float, float>> bounds;  // of each BatchNormalization step
  ExecutionPlan plan = training_plan(b, {4, 3, 10, 10});
  for (const PlanStep& s : plan.steps)
    if (s.norm_activation)
      bounds[b.g.nodes[s.node].outputs[0]] = {s.norm_activation->lo, s.norm_activation->hi};
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bounds, (std::map<std::string, std::pair<float, float>>{{"c1_bn", {0.0f, 6.0f}},
                                                                    {"r2_bn", {0.0f, inf}},
                                                                    {"twice_bn", {-inf, inf}},
                                                                    {"last_bn", {-inf, inf}}}));
  // backward() added GlobalAveragePool's gradient of last_bn to a copy of
  // the caller's, not into it.
  expect_close(dlast, uniform({4, 6, 5, 5}, 11), "the caller's gradient of last_bn");
}

// Training: a GlobalAveragePool alone reading the activation after a
// BatchNormalization joins their step, which then writes only the means (on
// odd 7x7 planes, the normalised values crossing both of ReLU6's bounds);
// not when the activation's output is also a graph output. Outputs, every
// gradient and the running statistics after two steps equal the reference
// kernels', node by node.
TEST(ExecutionPlan, TrainingFusesTheGlobalAveragePoolAfterTheActivation) {
  GraphBuilder b({4, 3, 7, 7});
  std::string c = b.relu6("c", b.batch_norm("c_bn", b.conv("c_conv", "x", 12, 3)));
  b.g.nodes.push_back(node("GlobalAveragePool", {c}, {"y"}));
  std::string r = b.unary("Relu", "r", b.batch_norm("r_bn", b.conv("r_conv", "x", 5, 3)));
  b.g.nodes.push_back(node("GlobalAveragePool", {r}, {"z"}));
  b.output("y");
  b.output("z");
  b.output(r);
  widen_norms(b, {"c_bn", "r_bn"}, 60);
  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({4, 3, 7, 7}, 61),
                      {{"y", uniform({4, 12, 1, 1}, 62)},
                       {"z", uniform({4, 5, 1, 1}, 63)},
                       {r, uniform({4, 5, 7, 7}, 64)}});
  EXPECT_EQ(profile.at("BatchNormalization+Clip+GlobalAveragePool").calls, 2);
  EXPECT_EQ(profile.at("BatchNormalization+Clip+GlobalAveragePool backward").calls, 2);
  EXPECT_EQ(profile.at("BatchNormalization+Relu").calls, 2) << "r: also a graph output";
  EXPECT_EQ(profile.at("GlobalAveragePool").calls, 2) << "z's pool only";
}

// BatchNormalization+activation, depthwise Conv, BatchNormalization+activation
// run as one step (backend::NormDepthwise): on the graph input (no input
// gradient wanted, but the first normalisation's are), and after a Conv with
// stride 2, a 5x5 window and odd sizes; not when the depthwise output is
// also read elsewhere.
TEST(ExecutionPlan, TrainingFusesTheDepthwiseConvBetweenTwoNormalisations) {
  GraphBuilder b({3, 8, 11, 11});
  std::string a = b.unary("Relu", "a", b.batch_norm("a2_bn", b.conv("a_dw", b.relu6("a1", b.batch_norm("a1_bn", "x")), 8, 3, 1, true)));
  std::string e = b.relu6("e", b.batch_norm("e_bn", b.conv("e_conv", a, 12, 1)));
  std::string d = b.relu6("d", b.batch_norm("d_bn", b.conv("d_dw", e, 12, 5, 2, true)));
  std::string p = b.batch_norm("p_bn", b.conv("p_conv", d, 6, 1));
  std::string q = b.relu6("q", b.batch_norm("q_bn", p));
  std::string twice = b.conv("twice_dw", q, 6, 3, 1, true);
  std::string r = b.relu6("r", b.batch_norm("r_bn", twice));
  b.g.nodes.push_back(node("GlobalAveragePool", {r}, {"y"}));
  b.output("y");
  b.output(twice);
  widen_norms(b, {"a1_bn", "a2_bn", "e_bn", "d_bn"}, 50);
  std::map<std::string, Session::OpTime> profile = train_both_ways(
      b, uniform({3, 8, 11, 11}, 9), {{"y", uniform({3, 6, 1, 1}, 10)}, {twice, uniform({3, 6, 6, 6}, 12)}});
  const std::string clip = "BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip";
  const std::string relu = "BatchNormalization+Clip+depthwise Conv+BatchNormalization+Relu";
  EXPECT_EQ(profile.at(relu).calls, 2) << "a: on the graph input";
  EXPECT_EQ(profile.at(clip).calls, 2) << "e to d only: not q to r, read twice";
  EXPECT_EQ(profile.at(relu + " backward").calls, 2);
  EXPECT_EQ(profile.at(clip + " backward").calls, 2);
  EXPECT_EQ(profile.at("BatchNormalization+Clip").calls, 2) << "q";
  EXPECT_EQ(profile.at("BatchNormalization+Clip+GlobalAveragePool").calls, 2) << "r, pooled";
}

// Two blocks on the input x: a pointwise Conv to c1 channels and a depthwise
// step at stride 1, then a pointwise Conv to c2 and a depthwise step at
// stride 2, each followed by BatchNormalization and ReLU6 (e, d, f, g).
std::string two_blocks(GraphBuilder& b, int64_t c1, int64_t c2) {
  std::string e = b.relu6("e", b.batch_norm("e_bn", b.conv("e_conv", "x", c1, 1)));
  std::string d = b.relu6("d", b.batch_norm("d_bn", b.conv("d_dw", e, c1, 3, 1, true)));
  std::string f = b.relu6("f", b.batch_norm("f_bn", b.conv("f_conv", d, c2, 1)));
  return b.relu6("g", b.batch_norm("g_bn", b.conv("g_dw", f, c2, 3, 2, true)));
}

// A depthwise step whose input nothing else holds or reads (a Conv's output)
// takes the input's storage for its input gradient: in both forms (11x11
// planes, then 6x6 ones, sixteen channels side by side) the gradients still
// equal the reference kernels'.
TEST(ExecutionPlan, TrainingDepthwiseStepWritesItsInputGradientOverItsInput) {
  GraphBuilder b({3, 6, 11, 11});
  std::string g = two_blocks(b, 20, 18);
  b.g.nodes.push_back(node("GlobalAveragePool", {g}, {"y"}));
  b.output("y");
  widen_norms(b, {"e_bn", "d_bn", "f_bn", "g_bn"}, 70);
  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({3, 6, 11, 11}, 29), {{"y", uniform({3, 18, 1, 1}, 30)}});
  EXPECT_EQ(profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip backward").calls, 4);
}

// Planes of 56x56 and more: the depthwise step's output and the projecting
// BatchNormalization's output and input gradient are streamed to memory
// (Store::kStreamed), here on 57x57 planes, whose starts are not 64-byte
// aligned and whose ends are partial vectors.
TEST(ExecutionPlan, TrainingStreamsTheOutputsOfLargePlanes) {
  GraphBuilder b({2, 3, 57, 57});
  std::string e = b.relu6("e", b.batch_norm("e_bn", b.conv("e_conv", "x", 5, 1)));
  std::string d = b.relu6("d", b.batch_norm("d_bn", b.conv("d_dw", e, 5, 3, 1, true)));
  std::string p = b.batch_norm("p_bn", b.conv("p_conv", d, 4, 1));
  // A gradient that varies over the plane: a pooled one, the same at every
  // pixel, would leave p_bn's input gradient to cancellation.
  std::string q = b.conv("q_conv", p, 3, 1);
  b.output(q);
  widen_norms(b, {"e_bn", "d_bn", "p_bn"}, 80);
  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({2, 3, 57, 57}, 31), {{q, uniform({2, 3, 57, 57}, 32)}});
  EXPECT_EQ(profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip").calls, 2);
  EXPECT_EQ(profile.at("BatchNormalization backward").calls, 2);
}

// Planes whose channel, over the batch, is 1 MiB or more: the threads share
// each channel of the depthwise step's backward pass, each on its own
// images (norm_depthwise.cpp), here 241 images split 120 and 121, at
// stride 1 and at stride 2 to an odd output. Small planes over many images:
// on large ones, sums of a plane's values in float (in order, as the
// sanitizers' build adds them) drift from the reference's by more than its
// tolerance.
TEST(ExecutionPlan, TrainingSharesTheChannelsOfLargePlanesBetweenThreads) {
  GraphBuilder b({241, 2, 33, 33});
  std::string q = b.conv("q_conv", two_blocks(b, 3, 2), 2, 1);
  b.output(q);
  widen_norms(b, {"e_bn", "d_bn", "f_bn", "g_bn"}, 80);
  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({241, 2, 33, 33}, 41), {{q, uniform({241, 2, 17, 17}, 42)}});
  EXPECT_EQ(
      profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip backward").calls,
      4);
}

// The same step on planes of 7x7 and less, sixteen channels side by side
// (norm_depthwise_lanes.cpp): two blocks of channels, the second partial; a
// 3x3 window at stride 1 on the graph input (the first normalisation's
// gradients without the input's) and at stride 2 with an odd output.
TEST(ExecutionPlan, TrainingFusesTheDepthwiseStepOnSmallPlanesSixteenChannelsAtATime) {
  GraphBuilder b({3, 20, 7, 7});
  std::string a = b.relu6("a", b.batch_norm("a2_bn", b.conv("a_dw", b.relu6("a1", b.batch_norm("a1_bn", "x")), 20, 3, 1, true)));
  std::string e = b.relu6("e", b.batch_norm("e_bn", b.conv("e_conv", a, 36, 1)));
  std::string d = b.unary("Relu", "d", b.batch_norm("d_bn", b.conv("d_dw", e, 36, 3, 2, true)));
  b.g.nodes.push_back(node("GlobalAveragePool", {d}, {"y"}));
  b.output("y");
  widen_norms(b, {"a1_bn", "a2_bn", "e_bn", "d_bn"}, 60);
  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({3, 20, 7, 7}, 19), {{"y", uniform({3, 36, 1, 1}, 20)}});
  EXPECT_EQ(profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip").calls, 2);
  EXPECT_EQ(profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Relu").calls, 2);
  EXPECT_EQ(profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Relu backward").calls, 2);
}

// On 7x7 planes at batch 8 the values between a pointwise Conv and a
// depthwise step are stored channels-last (backend::ConvLayout): the step's
// output read by a Conv (after a stride-2 step from 14x14), a Conv's output
// read by a step, and both around a step of three channel blocks, the last
// partial. Not a 14x14 Conv's output, nor a value also read by an Add.
// Outputs, gradients and running statistics equal the reference kernels'.
TEST(ExecutionPlan, TrainingKeepsValuesBetweenPointwiseConvsAndDepthwiseStepsChannelsLast) {
  GraphBuilder b({8, 12, 14, 14});
  auto middle = [&](const std::string& name, const std::string& in, int64_t stride) {
    const int64_t c = b.channels.at(in);
    std::string a = b.relu6(name + "_a", b.batch_norm(name + "_bn1", in));
    return b.relu6(name, b.batch_norm(name + "_bn2", b.conv(name + "_dw", a, c, 3, stride, true)));
  };
  std::string e1 = b.conv("e1_conv", "x", 20, 1);  // 14x14: the plain layout
  std::string m1 = middle("m1", e1, 2);
  std::string q1 = b.batch_norm("q1_bn", b.conv("p1_conv", m1, 24, 1));
  std::string e2 = b.conv("e2_conv", q1, 40, 1);
  std::string m2 = middle("m2", e2, 1);
  std::string q2 = b.add("res2", b.batch_norm("q2_bn", b.conv("p2_conv", m2, 24, 1)), q1);
  std::string m3 = middle("m3", q2, 1);  // reads an Add's output, which is read twice
  std::string q3 = b.add("res3", b.conv("p3_conv", m3, 24, 1), q2);
  b.g.nodes.push_back(node("GlobalAveragePool", {q3}, {"y"}));
  b.output("y");
  widen_norms(b, {"m1_bn1", "m1_bn2", "m2_bn1", "m2_bn2", "m3_bn1", "m3_bn2"}, 80);

  ExecutionPlan plan = training_plan(b, {8, 12, 14, 14});
  EXPECT_EQ(plan.channels_last, (std::set<std::string>{m1, e2, m2, m3}));

  std::map<std::string, Session::OpTime> profile =
      train_both_ways(b, uniform({8, 12, 14, 14}, 81), {{"y", uniform({8, 24, 1, 1}, 82)}});
  EXPECT_EQ(
      profile.at("BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip backward").calls,
      6);
}

}  // namespace
}  // namespace graft
