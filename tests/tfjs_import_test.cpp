// TF.js layers models against TF.js itself (outputs recorded by
// scripts/make_tfjs_fixtures.js in tests/data/tfjs/), the graph's naming and
// layout conventions, and malformed model files.
//
// Tolerance: an output matches when max |graft - tfjs| <= 1e-4 * max |tfjs|
// over all its elements (relative to the output's largest magnitude).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graft/npy.h"
#include "graft/session.h"
#include "graft/tfjs.h"
#include "test_util.h"

using namespace graft;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr double kTolerance = 1e-4;

std::string fixture(const std::string& name) {
  return std::string(GRAFT_TEST_DATA) + "/tfjs/" + name + "/";
}

// NHWC -> NCHW, to compare TF.js' intermediate values with graft's.
Tensor nhwc_to_nchw(const Tensor& t) {
  int64_t n = t.dim(0), h = t.dim(1), w = t.dim(2), c = t.dim(3);
  Tensor out(DType::kF32, {n, c, h, w});
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t k = 0; k < c; ++k)
          dst[((b * c + k) * h + y) * w + x] = src[((b * h + y) * w + x) * c + k];
  return out;
}

struct Diff {
  double max_abs = 0, max_ref = 0;
  double relative() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
};

Diff compare(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  Diff d;
  if (got.shape() != want.shape()) return Diff{1e9, 1};
  std::vector<float> a = got.to_vector<float>(), b = want.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) {
    double e = std::abs(double(a[i]) - double(b[i]));
    d.max_abs = std::isnan(e) ? 1e9 : std::max(d.max_abs, e);
    d.max_ref = std::max(d.max_ref, std::abs(double(b[i])));
  }
  return d;
}

// Runs a fixture's model on its recorded inputs; `extra` values (cut points)
// become graph outputs too.
TensorMap run_fixture(const std::string& dir, Graph g, const std::vector<std::string>& extra = {}) {
  for (const std::string& v : extra) g.outputs.push_back(ValueDecl{v, DType::kF32, std::nullopt});
  TensorMap inputs;
  for (const ValueDecl& in : g.inputs) inputs[in.name] = load_npy(dir + "in." + in.name + ".npy");
  return Session(g).run(inputs);
}

// --- small models vs TF.js --------------------------------------------------------

class SmallModel : public testing::TestWithParam<const char*> {};

TEST_P(SmallModel, MatchesTfjs) {
  std::string dir = fixture(GetParam());
  Graph g = load_tfjs(dir + "model.json");
  TensorMap out = run_fixture(dir, g);
  ASSERT_EQ(out.size(), g.outputs.size());
  for (const ValueDecl& o : g.outputs) {
    Tensor want = load_npy(dir + "out." + o.name + ".npy");
    Diff d = compare(out.at(o.name), want);
    std::printf("  %-12s %-16s max |diff| %.3g (max |tfjs| %.3g, relative %.3g)\n", GetParam(),
                o.name.c_str(), d.max_abs, d.max_ref, d.relative());
    EXPECT_LE(d.max_abs, kTolerance * d.max_ref) << o.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SmallModel,
                         testing::Values("convs", "merge_pool", "sequential", "nested", "rescaling",
                                         "keras_only", "quantized", "float16"),
                         [](const testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param);
                         });

TEST(TfjsImport, InputIsNhwcThenTransposedAndStatesItsRange) {
  Graph g = load_tfjs(fixture("convs") + "model.json");
  ASSERT_EQ(g.inputs.size(), 1u);
  const ValueDecl& in = g.inputs[0];
  EXPECT_EQ(in.name, "image");
  ASSERT_TRUE(in.shape.has_value());
  ASSERT_EQ(in.shape->size(), 4u);
  EXPECT_EQ((*in.shape)[0].symbol, "batch");
  EXPECT_EQ((*in.shape)[1].value, 9);
  EXPECT_EQ((*in.shape)[3].value, 3);
  const Node* t = g.find_node("image/nchw");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->op_type, "Transpose");
  EXPECT_EQ(t->attr_ints("perm"), (std::vector<int64_t>{0, 3, 1, 2}));
  EXPECT_EQ(g.opset, 13);
  EXPECT_EQ(g.metadata.at("graft.input_layout"), "NHWC");
  EXPECT_EQ(g.metadata.at("graft.input_range"), "0..1");
  EXPECT_EQ(load_tfjs(fixture("rescaling") + "model.json").metadata.at("graft.input_range"),
            "0..255");
  EXPECT_EQ(load_tfjs(fixture("nested") + "model.json").metadata.at("graft.input_range"), "0..1");
}

// The rescaling fixture's Sequential nested in another Sequential that starts
// with an InputLayer: the Rescaling is still the first layer the input meets.
TEST(TfjsImport, NestedSequentialStartingWithRescaling) {
  fs::path dir = fs::temp_directory_path() / ("graft_tfjs_n_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(fixture("rescaling"), dir);
  json m = json::parse(std::ifstream(dir / "model.json"));
  json inner = m["modelTopology"];
  m["modelTopology"] = {
      {"class_name", "Sequential"},
      {"config",
       {{"name", "wrapper"},
        {"layers",
         json::array(
             {{{"class_name", "InputLayer"},
               {"config", {{"name", "rescale_input"}, {"batch_input_shape", {nullptr, 6, 6, 3}}}}},
              inner})}}}};
  std::ofstream(dir / "model.json") << m.dump();
  Graph g = load_tfjs((dir / "model.json").string());
  EXPECT_EQ(g.metadata.at("graft.input_range"), "0..255");
  EXPECT_EQ(g.outputs[0].name, "rescaled");
  TensorMap out = run_fixture(fixture("rescaling"), g);
  Diff d = compare(out.at("rescaled"), load_npy(fixture("rescaling") + "out.logits.npy"));
  EXPECT_LE(d.max_abs, kTolerance * d.max_ref);
  fs::remove_all(dir);
}

TEST(TfjsImport, ValuesAndNodesAreNamedAfterLayers) {
  Graph g = load_tfjs(fixture("convs") + "model.json");
  // A layer with an activation: the op writes "<layer>/conv", the activation "<layer>".
  ASSERT_NE(g.find_node("c1"), nullptr);
  EXPECT_EQ(g.find_node("c1")->op_type, "Relu");
  EXPECT_EQ(g.find_node("c1/conv")->op_type, "Conv");
  EXPECT_EQ(g.producer("bn")->op_type, "BatchNormalization");
  EXPECT_EQ(g.producer("sep/depthwise")->op_type, "Conv");
  EXPECT_EQ(g.producer("sep/depthwise")->attr_int("group", 0), 4);
  EXPECT_EQ(g.producer("dw1/conv")->attr_int("group", 0), 4);
  EXPECT_EQ(g.producer("dw1/conv")->attr_string("auto_pad", ""), "SAME_UPPER");
  EXPECT_EQ(g.initializers.at("dw1/depthwise_kernel").shape(), (Shape{8, 1, 3, 3}));
  EXPECT_EQ(g.initializers.at("c3/kernel").shape(), (Shape{4, 4, 2, 3}));
  // A rank-4 output leaves in NHWC: the NCHW value is "<layer>/nchw".
  EXPECT_EQ(g.producer("cat")->op_type, "Transpose");
  EXPECT_EQ(g.producer("cat/nchw")->op_type, "Concat");
  EXPECT_EQ(g.producer("cat/nchw")->attr_int("axis", 0), 1);

  Graph nested = load_tfjs(fixture("nested") + "model.json");
  EXPECT_EQ(nested.producer("tm_model")->op_type, "Identity");
  EXPECT_EQ(nested.producer("trunk_pool")->op_type, "Flatten");
  EXPECT_EQ(nested.producer("trunk_pool/pool")->op_type, "GlobalAveragePool");
  EXPECT_EQ(nested.producer("shared")->op_type, "Gemm");
  EXPECT_EQ(nested.producer("shared/call1")->op_type, "Gemm");
  EXPECT_EQ(nested.producer("shared/call1")->inputs[1], "shared/kernel");
  EXPECT_EQ(nested.producer("proj/call1")->op_type, "Identity");
}

TEST(TfjsImport, CutAtAnIntermediateLayer) {
  std::string dir = fixture("nested");
  Graph g = load_tfjs(dir + "model.json");
  TensorMap out = run_fixture(dir, g, {"trunk_pool", "head_dense"});
  EXPECT_EQ(out.at("trunk_pool").shape(), (Shape{2, 4}));
  EXPECT_EQ(out.at("head_dense").shape(), (Shape{2, 6}));
  for (float v : out.at("head_dense").to_vector<float>()) EXPECT_GE(v, 0.0f);
}

TEST(TfjsImport, CommandLineInspectsAndRunsModelJson) {
  std::string dir = fixture("convs");
  fs::path out = fs::temp_directory_path() / ("graft_tfjs_cli_" + std::to_string(::getpid()));
  test::CommandResult r = test::graft_cli("inspect " + dir + "model.json");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("image float32 [batchx9x9x3]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sep/depthwise"), std::string::npos) << r.output;
  r = test::graft_cli("run " + dir + "model.json --input " + dir + "in.image.npy --out " +
                      out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  Diff d = compare(load_npy((out / "cat.npy").string()), load_npy(dir + "out.cat.npy"));
  EXPECT_LE(d.max_abs, kTolerance * d.max_ref);
  fs::remove_all(out);
}

// --- the nsfwjs MobileNetV2 on real photos -----------------------------------------

TEST(TfjsImport, NsfwjsMobileNetV2MatchesTfjsOnPhotos) {
  fs::path model = fs::path(GRAFT_TEST_DATA) / "../../models/nsfwjs_mobilenet_v2/model.json";
  if (!fs::exists(model))
    GTEST_SKIP() << model.lexically_normal().string()
                 << " does not exist: run scripts/fetch_nsfwjs.sh to fetch it";
  std::string dir = fixture("nsfwjs");
  Graph g = load_tfjs(model.string());
  EXPECT_EQ(g.inputs[0].name, "input_1");
  EXPECT_EQ(g.metadata.at("graft.input_range"), "0..1");
  TensorMap out = run_fixture(dir, g, {"block_10_project_BN", "average_pooling2d_1"});
  const std::vector<std::pair<std::string, bool>> checks = {
      {"dense_3", false}, {"block_10_project_BN", true}, {"average_pooling2d_1", true}};
  for (const auto& [name, nchw] : checks) {
    Tensor want = load_npy(dir + "out." + name + ".npy");
    Diff d = compare(out.at(name), nchw ? nhwc_to_nchw(want) : want);
    std::printf("  nsfwjs %-20s max |diff| %.3g (max |tfjs| %.3g, relative %.3g)\n", name.c_str(),
                d.max_abs, d.max_ref, d.relative());
    EXPECT_LE(d.max_abs, kTolerance * d.max_ref) << name;
  }
}

// --- bad input -------------------------------------------------------------------------

// A copy of a fixture's files in a temporary folder, with model.json editable.
class BadModel : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("graft_tfjs_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::copy(fixture("rescaling"), dir_);
    std::ifstream f(dir_ / "model.json");
    model_ = json::parse(f);
  }
  void TearDown() override { fs::remove_all(dir_); }

  json& weights() { return model_["weightsManifest"][0]["weights"]; }
  json& layer(size_t i) { return model_["modelTopology"]["config"]["layers"][i]; }
  std::string bin() const { return (dir_ / "group1-shard1of1.bin").string(); }
  // Writes model.json and loads it, expecting an error of `kind` containing `text`.
  void expect_error(ErrorKind kind, const std::string& text) {
    std::ofstream(dir_ / "model.json") << model_.dump();
    test::expect_error([&] { load_tfjs((dir_ / "model.json").string()); }, kind, text);
  }
  void resize_bin(uintmax_t size) { fs::resize_file(bin(), size); }

  fs::path dir_;
  json model_;
};

TEST_F(BadModel, Baseline) {
  std::ofstream(dir_ / "model.json") << model_.dump();
  EXPECT_NO_THROW(load_tfjs((dir_ / "model.json").string()));
}

TEST_F(BadModel, MissingModelFile) {
  test::expect_error([&] { load_tfjs((dir_ / "nothing.json").string()); }, ErrorKind::kNotFound,
                     "nothing.json: cannot open file");
}

TEST_F(BadModel, MalformedJson) {
  std::ofstream(dir_ / "model.json") << model_.dump().substr(0, 200);
  test::expect_error([&] { load_tfjs((dir_ / "model.json").string()); }, ErrorKind::kCorruption,
                     "model.json: malformed JSON");
}

TEST_F(BadModel, MissingWeightFile) {
  fs::remove(bin());
  expect_error(ErrorKind::kNotFound, "weight file '" + bin() + "' cannot be read");
}

TEST_F(BadModel, TruncatedWeightFile) {
  resize_bin(fs::file_size(bin()) - 10);
  expect_error(ErrorKind::kCorruption, "weight file '" + bin() + "' is truncated");
  expect_error(ErrorKind::kCorruption, "(weight 'logits/bias' is past the end)");
}

TEST_F(BadModel, WeightFileTooLong) {
  resize_bin(fs::file_size(bin()) + 4);
  expect_error(ErrorKind::kCorruption, "but its weights take");
}

TEST_F(BadModel, WeightMissingFromManifest) {
  // Drop conv/bias (4 floats) from the manifest and the file.
  json& w = weights();
  auto it =
      std::find_if(w.begin(), w.end(), [](const json& x) { return x["name"] == "conv/bias"; });
  ASSERT_NE(it, w.end());
  w.erase(it);
  std::vector<char> data(fs::file_size(bin()));
  std::ifstream(bin(), std::ios::binary).read(data.data(), data.size());
  size_t kernel_bytes = 3 * 3 * 3 * 4 * 4;
  data.erase(data.begin() + kernel_bytes, data.begin() + kernel_bytes + 16);
  std::ofstream(bin(), std::ios::binary).write(data.data(), data.size());
  expect_error(ErrorKind::kCorruption,
               "layer 'conv' (Conv2D): weight 'conv/bias' is missing from the weights manifest");
}

TEST_F(BadModel, WeightOfTheWrongShape) {
  weights()[0]["shape"] = {3, 3, 4, 3};  // same size, other shape
  expect_error(ErrorKind::kCorruption,
               "layer 'conv' (Conv2D): weight 'conv/kernel' has shape [3, 3, 4, 3] in the "
               "manifest, the layer needs [3, 3, 3, 4]");
}

TEST_F(BadModel, WeightThatBelongsToNoLayer) {
  weights()[1]["name"] = "ghost/bias";
  expect_error(ErrorKind::kCorruption, "weight 'conv/bias' is missing");
  weights()[1]["name"] = "conv/bias";
  weights().push_back({{"name", "ghost/bias"}, {"shape", {1}}, {"dtype", "float32"}});
  resize_bin(fs::file_size(bin()) + 4);
  expect_error(ErrorKind::kCorruption, "weight 'ghost/bias' in the manifest belongs to no layer");
}

TEST_F(BadModel, HugeShapeIsRejectedBeforeAllocating) {
  weights()[0]["shape"] = {1000000, 1000000, 1000, 3};
  expect_error(ErrorKind::kCorruption, "is truncated");
  weights()[0]["shape"] = {4611686018427387904LL, 4};
  expect_error(ErrorKind::kCorruption,
               "weight 'conv/kernel': shape [4611686018427387904, 4] is too large");
}

TEST_F(BadModel, UnknownDtype) {
  weights()[0]["dtype"] = "complex64";
  expect_error(ErrorKind::kUnsupported, "weight 'conv/kernel': dtype 'complex64' is not supported");
}

TEST_F(BadModel, UnknownQuantization) {
  weights()[0]["quantization"] = {{"dtype", "int4"}, {"min", 0}, {"scale", 1}};
  expect_error(ErrorKind::kUnsupported,
               "weight 'conv/kernel': quantization dtype 'int4' is not supported");
  weights()[0]["quantization"] = {{"dtype", "uint8"}, {"scale", 1}};
  expect_error(ErrorKind::kCorruption, "weight 'conv/kernel': missing field 'min'");
}

TEST_F(BadModel, WeightPathOutsideTheFolder) {
  model_["weightsManifest"][0]["paths"][0] = "../elsewhere.bin";
  expect_error(ErrorKind::kCorruption, "weight path '../elsewhere.bin' must be a relative path");
}

TEST_F(BadModel, UnknownLayerClass) {
  layer(2)["class_name"] = "LSTM";
  expect_error(ErrorKind::kUnsupported,
               "layer 'gap' (LSTM): layer class 'LSTM' is not supported (supported: ");
}

TEST_F(BadModel, UnsupportedSettings) {
  layer(1)["config"]["data_format"] = "channels_first";
  expect_error(ErrorKind::kUnsupported,
               "layer 'conv' (Conv2D): data_format 'channels_first' is not supported");
  layer(1)["config"]["data_format"] = "channels_last";
  layer(1)["config"]["dilation_rate"] = {2, 2};
  expect_error(ErrorKind::kUnsupported,
               "layer 'conv' (Conv2D): dilation_rate 2x2 together with strides 2x2 is not "
               "supported");
  layer(1)["config"]["dilation_rate"] = {1, 1};
  layer(1)["config"]["activation"] = "elu";
  expect_error(ErrorKind::kUnsupported, "layer 'conv' (Conv2D): activation 'elu' is not supported");
  layer(1)["config"]["activation"] = "relu6";
  layer(1)["config"]["padding"] = "causal";
  expect_error(ErrorKind::kUnsupported, "layer 'conv' (Conv2D): padding 'causal' is not supported");
}

TEST_F(BadModel, DilatedStridedDepthwise) {
  layer(1)["class_name"] = "DepthwiseConv2D";
  layer(1)["config"]["dilation_rate"] = 2;
  expect_error(ErrorKind::kUnsupported,
               "layer 'conv' (DepthwiseConv2D): dilation_rate 2x2 together with strides 2x2");
}

TEST_F(BadModel, ReluSettings) {
  layer(1) = {{"class_name", "ReLU"}, {"config", {{"name", "conv"}, {"negative_slope", -0.5}}}};
  expect_error(ErrorKind::kCorruption,
               "layer 'conv' (ReLU): negative_slope must not be negative, got -0.5");
  layer(1) = {{"class_name", "ReLU"}, {"config", {{"name", "conv"}, {"max_value", -1}}}};
  expect_error(ErrorKind::kCorruption, "layer 'conv' (ReLU): max_value must not be negative");
}

TEST_F(BadModel, GraphModelsAndOtherFormats) {
  model_["format"] = "graph-model";
  expect_error(ErrorKind::kUnsupported, "only layers models are supported");
  model_["format"] = "layers-model";
  model_["modelTopology"]["class_name"] = "Conv2D";
  expect_error(ErrorKind::kUnsupported, "the topology is a 'Conv2D'");
  model_["modelTopology"]["class_name"] = "Sequential";
  model_["modelTopology"]["config"]["layers"][0]["config"].erase("batch_input_shape");
  expect_error(ErrorKind::kUnsupported, "does not declare its input shape");
}

TEST_F(BadModel, MissingField) {
  layer(1)["config"].erase("filters");
  expect_error(ErrorKind::kCorruption, "layer 'conv' (Conv2D): missing field 'filters'");
  layer(1)["config"]["filters"] = "four";
  expect_error(ErrorKind::kCorruption, "layer 'conv' (Conv2D): 'filters' must be an integer");
}

TEST(TfjsBadTopology, FunctionalReferencesAndKeras3Nodes) {
  fs::path dir = fs::temp_directory_path() / ("graft_tfjs_f_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(fixture("nested"), dir);
  json m = json::parse(std::ifstream(dir / "model.json"));
  auto write_and_expect = [&](ErrorKind kind, const std::string& text) {
    std::ofstream(dir / "model.json") << m.dump();
    test::expect_error([&] { load_tfjs((dir / "model.json").string()); }, kind, text);
  };
  json& layers = m["modelTopology"]["config"]["layers"];
  json saved = layers[3]["inbound_nodes"];  // widen <- tm_model
  layers[3]["inbound_nodes"] = json::parse(R"([[["nowhere", 0, 0, {}]]])");
  write_and_expect(ErrorKind::kCorruption,
                   "layer 'widen' reads output 0 of layer 'nowhere', which the model does not "
                   "define");
  layers[3]["inbound_nodes"] = json::parse(R"([{"args": [], "kwargs": {}}])");
  write_and_expect(ErrorKind::kUnsupported, "is not in Keras 2 form");
  layers[3]["inbound_nodes"] = saved;
  m["modelTopology"]["config"]["output_layers"][1] = json::parse(R"(["both", 0, 3])");
  write_and_expect(ErrorKind::kCorruption, "output [both, 0, 3] is not defined by the model");
  fs::remove_all(dir);
}

}  // namespace
