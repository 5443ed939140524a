// ONNX export: the file passes ONNX's checker and shape inference, re-imports
// into graft with the same outputs, and runs the same in ONNX Runtime.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>

#include <unistd.h>

#include "graft/file.h"
#include "graft/npy.h"
#include "graft/onnx.h"
#include "graft/passes.h"
#include "graft/session.h"
#include "graft/surgery.h"
#include "graft/tfjs.h"
#include "test_util.h"

using namespace graft;
namespace fs = std::filesystem;

namespace {

const std::string kData = GRAFT_TEST_DATA;

// Checks the bytes with ONNX's own checker and full shape inference.
void expect_valid_onnx(const std::string& bytes) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  EXPECT_NO_THROW(onnx::checker::check_model(m));
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(),
                                                     onnx::ShapeInferenceOptions{true, 1, false}));
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double scale = 0, diff = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(b.data<float>()[i])));
    diff = std::max(diff, std::abs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  }
  return diff / std::max(scale, 1e-12);
}

Tensor run_one(const Graph& g, const Tensor& x) {
  Session s(g);
  return s.run({{g.inputs.at(0).name, x}}).at(g.outputs.at(0).name);
}

}  // namespace

TEST(OnnxExport, RoundTripIsExactWithoutFolding) {
  Graph g = load_onnx(kData + "/models/mobilenet_v2_025/model.onnx");
  std::string bytes = serialize_onnx(g, {.fold_batch_norm = false});
  expect_valid_onnx(bytes);
  Graph back = parse_onnx(bytes, ".", "exported.onnx");
  Tensor x = load_npy(kData + "/models/mobilenet_v2_025/input.npy");
  EXPECT_EQ(max_rel_diff(run_one(back, x), run_one(g, x)), 0.0);
  EXPECT_EQ(back.nodes.size(), g.nodes.size());
}

TEST(OnnxExport, FoldsBatchNormIntoConvAndKeepsOutputs) {
  // A Keras-style model: Conv2D followed by BatchNormalization layers.
  Graph g = load_tfjs(kData + "/tfjs/convs/model.json");
  Graph folded = g;
  int n = fold_batch_norms(folded);
  // 'bn2' follows the depthwise Conv 'dw2' and folds; 'bn' follows a Clip
  // (c2's relu6), so it stays.
  EXPECT_EQ(n, 1);
  EXPECT_EQ(folded.find_node("bn2"), nullptr);
  EXPECT_NE(folded.find_node("bn"), nullptr);
  EXPECT_EQ(folded.nodes.size(), g.nodes.size() - 1);
  std::string bytes = serialize_onnx(g);
  expect_valid_onnx(bytes);
  Graph back = parse_onnx(bytes, ".", "exported.onnx");
  Tensor x = load_npy(kData + "/tfjs/convs/in.image.npy");
  Session a(g), b(back);
  TensorMap ya = a.run({{g.inputs[0].name, x}}), yb = b.run({{back.inputs[0].name, x}});
  for (const ValueDecl& out : g.outputs) EXPECT_LT(max_rel_diff(yb.at(out.name), ya.at(out.name)), 1e-5) << out.name;
  // Folding made new tensors: the original graph's weights are unchanged.
  EXPECT_EQ(g.initializers.size(), load_tfjs(kData + "/tfjs/convs/model.json").initializers.size());
}

TEST(OnnxExport, FineTunedModelRunsTheSameInOnnxRuntime) {
  fs::path ort = fs::path(kData) / "../../tools/ort/node_modules/onnxruntime-node";
  if (!fs::exists(ort) || std::system("node --version > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "ONNX Runtime (tools/ort) or node is missing: run scripts/setup.sh";
  Graph g = load_onnx(kData + "/models/mobilenet_v2_025/model.onnx");
  std::string cut = suggest_cut_points(g).at(0);
  g = extract(g, {"input"}, {cut});
  attach_head(g, cut, HeadOptions{.classes = 3, .kind = HeadOptions::Kind::kConv1x1, .seed = 5});
  append_softmax(g);
  g.metadata["graft.classes"] = "a,b,c";

  fs::path dir = test::temp_path("graft_export_ort");
  fs::remove_all(dir);
  fs::create_directories(dir);
  save_onnx(g, (dir / "model.onnx").string());
  fs::copy(kData + "/models/mobilenet_v2_025/input.npy", dir / "input.npy");
  std::string cmd = "node " + (fs::path(kData) / "../../scripts/ort_reference.js").string() + " " +
                    (dir / "model.onnx").string() + " " + (dir / "input.npy").string() + " --out " +
                    dir.string() + " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  Tensor ort_out = load_npy((dir / "ort_output_0.npy").string());
  Tensor graft_out = run_one(g, load_npy((dir / "input.npy").string()));
  EXPECT_EQ(graft_out.shape(), (Shape{2, 3}));
  double diff = max_rel_diff(graft_out, ort_out);
  std::printf("[ export ] graft vs ONNX Runtime on the exported fine-tuned model: max rel diff %.3g\n", diff);
  EXPECT_LT(diff, 1e-4);
  Graph back = load_onnx((dir / "model.onnx").string());
  EXPECT_EQ(back.metadata.at("graft.classes"), "a,b,c");
  fs::remove_all(dir);
}

namespace {

// Runs `graph` exported to ONNX in ONNX Runtime on `input` and returns its
// outputs in order; an empty vector when ONNX Runtime is not installed.
std::vector<Tensor> run_in_onnx_runtime(const Graph& graph, const Tensor& input, const std::string& name) {
  fs::path ort = fs::path(kData) / "../../tools/ort/node_modules/onnxruntime-node";
  if (!fs::exists(ort) || std::system("node --version > /dev/null 2>&1") != 0) return {};
  fs::path dir = fs::temp_directory_path() / ("graft_ort_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  save_onnx(graph, (dir / "model.onnx").string());
  save_npy((dir / "input.npy").string(), input);
  std::string cmd = "node " + (fs::path(kData) / "../../scripts/ort_reference.js").string() + " " +
                    (dir / "model.onnx").string() + " " + (dir / "input.npy").string() + " --out " +
                    dir.string() + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<Tensor> outs;
  for (size_t k = 0; k < graph.outputs.size(); ++k)
    outs.push_back(load_npy((dir / ("ort_output_" + std::to_string(k) + ".npy")).string()));
  fs::remove_all(dir);
  return outs;
}

}  // namespace

TEST(OnnxExport, TfjsModelsRunTheSameInOnnxRuntime) {
  // A Keras-style test model (NHWC input, 'same' padding, depthwise and
  // separable convs, BatchNorm) and, when fetched, the nsfwjs MobileNetV2.
  std::vector<std::pair<std::string, std::string>> models = {
      {kData + "/tfjs/convs/model.json", kData + "/tfjs/convs/in.image.npy"}};
  fs::path nsfwjs = fs::path(kData) / "../../models/nsfwjs_mobilenet_v2/model.json";
  if (fs::exists(nsfwjs)) models.push_back({nsfwjs.string(), kData + "/tfjs/nsfwjs/in.input_1.npy"});
  for (const auto& [model, input_file] : models) {
    Graph g = load_tfjs(model);
    Tensor x = load_npy(input_file);
    std::vector<Tensor> ort = run_in_onnx_runtime(g, x, fs::path(model).parent_path().filename().string());
    if (ort.empty()) GTEST_SKIP() << "ONNX Runtime (tools/ort) or node is missing: run scripts/setup.sh";
    Session s(g);
    TensorMap ours = s.run({{g.inputs[0].name, x}});
    for (size_t k = 0; k < g.outputs.size(); ++k) {
      double diff = max_rel_diff(ours.at(g.outputs[k].name), ort[k]);
      std::printf("[ export ] %s output %s: graft vs ONNX Runtime max rel diff %.3g\n", model.c_str(),
                  g.outputs[k].name.c_str(), diff);
      EXPECT_LT(diff, 1e-4) << model << " " << g.outputs[k].name;
    }
  }
}
