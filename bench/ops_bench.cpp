// Microbenchmarks of the ops MobileNetV2 spends its time in, each on its
// reference kernel and on oneDNN, at batch 1 and 32; and the whole model's
// forward pass when scripts/make_bench_models.py has written it.
//
//   ops_bench [--benchmark_filter=REGEX] [--benchmark_min_time=S] ...
//
// Names read op/shape/batch/path, e.g. conv_dw3x3_144x56x56/b32/onednn.
// GFLOP/s counts a multiply-add as two operations. The reference kernels
// are slow by design (one thread, plain loops): their batch-32 cases take
// seconds per iteration, so filter them out for quick runs
// (--benchmark_filter=onednn).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "graft/backend.h"
#include "graft/onnx.h"
#include "graft/session.h"

namespace {

using graft::Attribute;
using graft::DType;
using graft::Graph;
using graft::Node;
using graft::Shape;
using graft::Tensor;
using Ints = std::vector<int64_t>;

Tensor filled(Shape shape, float scale = 1) {
  Tensor t(DType::kF32, std::move(shape));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = scale * static_cast<float>((i * 7919) % 17 - 8) / 8;
  return t;
}

// One node whose first input is the graph input "x" and whose other inputs
// are initializers (weights), so nothing is folded ahead.
struct OpCase {
  std::string name;
  std::string op;
  Shape x;                     // without the batch dimension
  std::vector<Shape> weights;  // the other inputs
  std::map<std::string, Attribute> attrs;
  double flops_per_image = 0;  // 2 x multiply-adds, or one per element
};

Graph one_node_graph(const OpCase& c, int64_t batch) {
  Graph g;
  g.opset = 13;
  std::vector<graft::Dim> dims{{batch, ""}};
  for (int64_t d : c.x) dims.push_back({d, ""});
  g.inputs.push_back({"x", DType::kF32, dims});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  Node n{c.name, c.op, {"x"}, {"y"}, c.attrs};
  for (size_t i = 0; i < c.weights.size(); ++i) {
    std::string w = "w" + std::to_string(i);
    g.initializers[w] = filled(c.weights[i], 0.1f);
    n.inputs.push_back(w);
  }
  g.nodes.push_back(n);
  return g;
}

Shape with_batch(int64_t batch, const Shape& x) {
  Shape s{batch};
  s.insert(s.end(), x.begin(), x.end());
  return s;
}

void run_session(benchmark::State& state, graft::Session& session, const std::string& input,
                 const Tensor& x, bool reference, double flops) {
  graft::set_reference_kernels(reference);
  session.run({{input, x}});  // shapes, primitives and caches made once
  for (auto _ : state) benchmark::DoNotOptimize(session.run({{input, x}}));
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  // Inverted rate: seconds per (images / 1000), i.e. milliseconds per image.
  state.counters["ms/image"] = benchmark::Counter(
      static_cast<double>(x.dim(0)) * 1e-3,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  graft::set_reference_kernels(false);
}

// MobileNetV2 (224x224) layer shapes.
std::vector<OpCase> mobilenet_cases() {
  auto conv = [](std::string name, int64_t in, int64_t out, int64_t size, int64_t k, int64_t stride,
                 int64_t group) {
    int64_t pad = k / 2, out_size = (size + 2 * pad - k) / stride + 1;
    OpCase c{name, "Conv", {in, size, size}, {{out, in / group, k, k}, {out}}, {}, 0};
    c.attrs = {{"kernel_shape", Ints{k, k}},
               {"strides", Ints{stride, stride}},
               {"pads", Ints{pad, pad, pad, pad}},
               {"group", group}};
    c.flops_per_image = 2.0 * out * out_size * out_size * (in / group) * k * k;
    return c;
  };
  std::vector<OpCase> cases = {
      conv("conv_first3x3s2_3to32_224", 3, 32, 224, 3, 2, 1),
      conv("conv_dw3x3_32x112", 32, 32, 112, 3, 1, 32),
      conv("conv_dw3x3s2_96x112", 96, 96, 112, 3, 2, 96),
      conv("conv_dw3x3_144x56", 144, 144, 56, 3, 1, 144),
      conv("conv_dw3x3_576x14", 576, 576, 14, 3, 1, 576),
      conv("conv_pw1x1_16to96_112", 16, 96, 112, 1, 1, 1),
      conv("conv_pw1x1_144to24_56", 144, 24, 56, 1, 1, 1),
      conv("conv_pw1x1_96to576_14", 96, 576, 14, 1, 1, 1),
      conv("conv_pw1x1_320to1280_7", 320, 1280, 7, 1, 1, 1),
  };
  OpCase relu6{"clip_relu6_144x56", "Clip", {144, 56, 56}, {}, {}, 144.0 * 56 * 56};
  cases.push_back(relu6);
  cases.push_back(
      {"global_average_pool_1280x7", "GlobalAveragePool", {1280, 7, 7}, {}, {}, 1280.0 * 49});
  cases.push_back({"gemm_1280to1000",
                   "Gemm",
                   {1280},
                   {{1000, 1280}, {1000}},
                   {{"transB", int64_t{1}}},
                   2.0 * 1280 * 1000});
  return cases;
}

// Relu6's bounds are inputs from opset 11 on: initializers here.
void add_clip_bounds(Graph& g) {
  g.initializers["lo"] = Tensor::scalar(0.f);
  g.initializers["hi"] = Tensor::scalar(6.f);
  g.nodes[0].inputs = {"x", "lo", "hi"};
}

std::string models_dir() {
  const char* dir = std::getenv("GRAFT_MODELS");
  return dir ? dir : std::string(GRAFT_SOURCE_DIR) + "/models";
}

// A full fine-tune step: forward and backward through every layer with all
// weights trainable (the gradients of every Conv and the Gemm).
void register_training_step(const std::string& path) {
  for (bool reference : {true, false}) {
    std::string name =
        "mobilenet_v2.onnx/full_step/b32" + std::string(reference ? "/reference" : "/onednn");
    auto* b = benchmark::RegisterBenchmark(name.c_str(), [path, reference](benchmark::State& s) {
      Graph g = graft::load_onnx(path);
      for (const auto& [init, t] : g.initializers)
        if (t.dtype() == DType::kF32 && t.rank() >= 1) g.trainable.insert(init);
      graft::Session session(std::move(g));
      session.set_training(true);
      std::string input = session.graph().inputs.at(0).name;
      std::string output = session.graph().outputs.at(0).name;
      Tensor x = filled({32, 3, 224, 224});
      graft::set_reference_kernels(reference);
      auto step = [&] {
        graft::TensorMap out = session.run({{input, x}});
        session.backward({{output, filled(out.at(output).shape(), 0.01f)}});
      };
      step();
      for (auto _ : s) step();
      s.counters["ms/image"] = benchmark::Counter(
          32 * 1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
      graft::set_reference_kernels(false);
    });
    b->Unit(benchmark::kMillisecond)->UseRealTime();
    if (reference) b->Iterations(1);
  }
}

// A block's middle as W3 trains it: BatchNormalization, ReLU6, depthwise
// 3x3 Conv, BatchNormalization, ReLU6 at batch 32, every weight trainable
// (the plan runs it as one fused step, forward and backward). The times
// include Session::backward's copy of the output's gradient, up to 58 MB
// here (a W3 step's is its 32x10 logits').
Graph block_middle_graph(int64_t channels, int64_t size, int64_t stride) {
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DType::kF32,
                      std::vector<graft::Dim>{{32, ""}, {channels, ""}, {size, ""}, {size, ""}}});
  g.outputs.push_back({"y", DType::kF32, std::nullopt});
  g.initializers["lo"] = Tensor::scalar(0.f);
  g.initializers["hi"] = Tensor::scalar(6.f);
  Tensor ones(DType::kF32, {channels});
  for (int64_t c = 0; c < channels; ++c) ones.data<float>()[c] = 1.0f;
  auto norm_relu6 = [&](const std::string& name, const std::string& in, const std::string& out) {
    // Each its own storage: a training step updates the running statistics in place.
    g.initializers[name + "_scale"] = ones.clone();
    g.initializers[name + "_shift"] = filled({channels}, 0.1f);
    g.initializers[name + "_mean"] = Tensor(DType::kF32, {channels});
    g.initializers[name + "_var"] = ones.clone();
    g.trainable.insert({name + "_scale", name + "_shift"});
    g.nodes.push_back(Node{name,
                           "BatchNormalization",
                           {in, name + "_scale", name + "_shift", name + "_mean", name + "_var"},
                           {name + "_out"},
                           {}});
    g.nodes.push_back(Node{name + "_relu6", "Clip", {name + "_out", "lo", "hi"}, {out}, {}});
  };
  norm_relu6("bn1", "x", "a");
  g.initializers["w"] = filled({channels, 1, 3, 3}, 0.1f);
  g.trainable.insert("w");
  g.nodes.push_back(Node{"dw",
                         "Conv",
                         {"a", "w"},
                         {"d"},
                         {{"kernel_shape", Ints{3, 3}},
                          {"strides", Ints{stride, stride}},
                          {"pads", Ints{1, 1, 1, 1}},
                          {"group", channels}}});
  norm_relu6("bn2", "d", "y");
  return g;
}

void register_block_middles() {
  struct Middle {
    int64_t channels, size, stride;
  };
  for (Middle m : std::vector<Middle>{{32, 112, 1},
                                      {96, 112, 2},
                                      {144, 56, 1},
                                      {144, 56, 2},
                                      {192, 28, 1},
                                      {384, 14, 1},
                                      {576, 14, 1},
                                      {576, 14, 2},
                                      {960, 7, 1}}) {
    std::string name = "block_middle_train_" + std::to_string(m.channels) + "x" +
                       std::to_string(m.size) + (m.stride == 2 ? "s2" : "") + "/b32/onednn";
    auto* b = benchmark::RegisterBenchmark(name.c_str(), [m](benchmark::State& s) {
      graft::Session session(block_middle_graph(m.channels, m.size, m.stride));
      session.set_training(true);
      Tensor x = filled({32, m.channels, m.size, m.size});
      Tensor dy = filled({32, m.channels, m.size / m.stride, m.size / m.stride}, 0.01f);
      auto step = [&] {
        session.run({{"x", x}});
        session.backward({{"y", dy}});
      };
      session.set_profiling(true);
      step();
      session.set_profiling(false);
      if (!session.profile().count(
              "BatchNormalization+Clip+depthwise Conv+BatchNormalization+Clip"))
        s.SkipWithError("the plan did not fuse the middle into one step");
      for (auto _ : s) step();
    });
    b->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

void register_all() {
  register_block_middles();
  for (const OpCase& c : mobilenet_cases()) {
    for (int64_t batch : {1, 32}) {
      for (bool reference : {true, false}) {
        std::string name =
            c.name + "/b" + std::to_string(batch) + (reference ? "/reference" : "/onednn");
        auto* b =
            benchmark::RegisterBenchmark(name.c_str(), [c, batch, reference](benchmark::State& s) {
              Graph g = one_node_graph(c, batch);
              if (c.op == "Clip") add_clip_bounds(g);
              graft::Session session(std::move(g));
              run_session(s, session, "x", filled(with_batch(batch, c.x)), reference,
                          c.flops_per_image * static_cast<double>(batch));
            });
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        if (reference) b->MinTime(0.2);
      }
    }
  }
  if (std::filesystem::exists(models_dir() + "/mobilenet_v2.onnx"))
    register_training_step(models_dir() + "/mobilenet_v2.onnx");
  // The whole forward pass: 300.8 M multiply-adds per image (PERF.md).
  for (const char* model : {"mobilenet_v2.onnx", "mobilenet_v2_features.onnx"}) {
    std::string path = models_dir() + "/" + model;
    if (!std::filesystem::exists(path)) continue;
    for (int64_t batch : {1, 32}) {
      for (bool reference : {true, false}) {
        std::string name = std::string(model) + "/b" + std::to_string(batch) +
                           (reference ? "/reference" : "/onednn");
        auto* b = benchmark::RegisterBenchmark(
            name.c_str(), [path, batch, reference](benchmark::State& s) {
              graft::Session session(graft::load_onnx(path));
              std::string input = session.graph().inputs.at(0).name;
              run_session(s, session, input, filled({batch, 3, 224, 224}), reference,
                          2 * 300.8e6 * static_cast<double>(batch));
            });
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        if (reference) b->Iterations(batch == 1 ? 5 : 1);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
