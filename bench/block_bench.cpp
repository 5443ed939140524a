// An inverted residual block's expansion and middle in training, at
// MobileNetV2's shapes and batch 32: the expansion with the middle as one
// step, E made band by band (backend::expand_norm_depthwise_*), against the
// two steps the plan runs today (the pointwise Conv on oneDNN, then
// backend::norm_depthwise_*), forward and backward.
//
//   block_bench [--benchmark_filter=REGEX]
//
// Names read block/direction/path, e.g. 16to96x112s2/backward/fused.
#include <benchmark/benchmark.h>

#include <vector>

#include "backend/backend.h"
#include "ops/op.h"

namespace {

using graft::DType;
using graft::Shape;
using graft::Tensor;
using Ints = std::vector<int64_t>;
namespace backend = graft::backend;

Tensor filled(Shape shape, float lo, float hi, int seed) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = lo + (hi - lo) * static_cast<float>((i * 7919 + seed * 104729) % 1000) / 1000;
  return t;
}

struct Block {
  int64_t n = 32, cin, ce, h, stride;
  int64_t oh() const { return (h - 1) / stride + 1; }
  Tensor x = filled({n, cin, h, h}, -1, 1, 1), we = filled({ce, cin, 1, 1}, -0.3f, 0.3f, 2);
  Tensor scale1 = filled({ce}, 0.5f, 1.5f, 3), shift1 = filled({ce}, -0.1f, 0.1f, 4);
  Tensor wd = filled({ce, 1, 3, 3}, -0.3f, 0.3f, 5);
  Tensor scale2 = filled({ce}, 0.5f, 1.5f, 6), shift2 = filled({ce}, -0.1f, 0.1f, 7);
  std::vector<Tensor> running{filled({ce}, 0, 1, 8), filled({ce}, 0.5f, 1, 9),
                              filled({ce}, 0, 1, 10), filled({ce}, 0.5f, 1, 11)};
  Tensor e{DType::kF32, {n, ce, h, h}}, de{DType::kF32, {n, ce, h, h}};
  Tensor d{DType::kF32, {n, ce, oh(), oh()}}, y{DType::kF32, {n, ce, oh(), oh()}};
  Tensor dy = filled({n, ce, oh(), oh()}, -1, 1, 12);
  Tensor dx{DType::kF32, {n, cin, h, h}}, dwe{DType::kF32, {ce, cin, 1, 1}};
  Tensor dwd{DType::kF32, {ce, 1, 3, 3}};
  std::vector<Tensor> dparams{Tensor(DType::kF32, {ce}), Tensor(DType::kF32, {ce}),
                              Tensor(DType::kF32, {ce}), Tensor(DType::kF32, {ce})};
  backend::NormDepthwise f;
  graft::Node expansion;

  Block(int64_t cin_, int64_t ce_, int64_t h_, int64_t stride_)
      : cin(cin_), ce(ce_), h(h_), stride(stride_) {
    f.before = {1e-5, 0.9, 0, 6};
    f.after = {1e-5, 0.9, 0, 6};
    f.conv.op_type = "Conv";
    f.conv.attrs = {{"group", ce},
                    {"kernel_shape", Ints{3, 3}},
                    {"pads", Ints{1, 1, 1, 1}},
                    {"strides", Ints{stride, stride}}};
    expansion.op_type = "Conv";
    expansion.inputs = {"x", "w"};
    expansion.outputs = {"e"};
    expansion.attrs = {{"kernel_shape", Ints{1, 1}}};
  }
  backend::NormDepthwiseInputs middle(const Tensor* input) const {
    return {input, &scale1, &shift1, &wd, nullptr, &scale2, &shift2};
  }
  backend::NormDepthwiseGradients middle_grads(Tensor* dinput) {
    return {dinput, &dparams[0], &dparams[1], &dwd, nullptr, &dparams[2], &dparams[3]};
  }
  backend::NormDepthwiseStatistics fused_forward() {
    return backend::expand_norm_depthwise_forward(f, {&x, &we, nullptr, middle(nullptr)}, 0,
                                                  running[0], running[1], running[2],
                                                  running[3], d, y);
  }
  backend::NormDepthwiseStatistics apart_forward() {
    graft::ops::KernelContext c{expansion, 13, {&x, &we}, {&e}, false, 0};
    backend::conv_forward(c);
    return backend::norm_depthwise_forward(f, middle(&e), running[0], running[1], running[2],
                                           running[3], y);
  }
  void fused_backward(const backend::NormDepthwiseStatistics& st) {
    backend::expand_norm_depthwise_backward(f, st.before, st.after,
                                            {&x, &we, nullptr, middle(nullptr)}, d, dy, 0,
                                            {&dx, &dwe, nullptr, middle_grads(nullptr)});
  }
  void apart_backward(const backend::NormDepthwiseStatistics& st) {
    backend::norm_depthwise_backward(f, st.before, st.after, middle(&e), dy, middle_grads(&de));
    graft::ops::BackwardContext c{expansion, 13, true, {&x, &we}, {&e}, {&de}, {&dx, &dwe}, 0};
    backend::conv_backward(c);
  }
};

void register_block(const char* name, int64_t cin, int64_t ce, int64_t h, int64_t stride) {
  auto make = [=] { return std::make_shared<Block>(cin, ce, h, stride); };
  const std::string base = name;
  benchmark::RegisterBenchmark((base + "/forward/fused").c_str(), [make](benchmark::State& state) {
    auto b = make();
    for (auto _ : state) b->fused_forward();
  })->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark((base + "/forward/apart").c_str(), [make](benchmark::State& state) {
    auto b = make();
    for (auto _ : state) b->apart_forward();
  })->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark((base + "/backward/fused").c_str(), [make](benchmark::State& state) {
    auto b = make();
    const backend::NormDepthwiseStatistics st = b->fused_forward();
    for (auto _ : state) b->fused_backward(st);
  })->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark((base + "/backward/apart").c_str(), [make](benchmark::State& state) {
    auto b = make();
    const backend::NormDepthwiseStatistics st = b->apart_forward();
    for (auto _ : state) b->apart_backward(st);
  })->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_block("16to96x112s2", 16, 96, 112, 2);
  register_block("24to144x56s1", 24, 144, 56, 1);
  register_block("24to144x56s2", 24, 144, 56, 2);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
