// Whole models against an independent runtime: each fixture under
// tests/data/models/<name>/ holds a small PyTorch-exported model.onnx, an
// input.npy (batch 2) and ONNX Runtime's outputs ort_output_<k>.npy
// (scripts/make_fixtures.py and scripts/ort_reference.js write them). graft
// must load the model, run it and agree with ONNX Runtime.
//
// Agreement rule, per output: |graft - ort| <= 1e-4 * max|ort| for every
// element, i.e. the error is at most 1e-4 of the output's largest magnitude.
// A per-element relative rule with a small floor (1e-4 * max(|b|, 1e-2 *
// max|b|)) is too strict for two correct fp32 runtimes: MobileNetV2's logits
// are cancelling sums of 1280 products, and PyTorch and ONNX Runtime
// themselves differ by 3e-4 under it. Under the rule used here they differ
// by at most 1.2e-5, so the bound leaves room for another summation order
// while any wrong op shows up orders of magnitude above it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "graft/npy.h"
#include "graft/onnx.h"
#include "graft/session.h"

using namespace graft;

namespace {

constexpr double kTolerance = 1e-4;

std::string fixture_dir(const std::string& name) {
  return std::string(GRAFT_TEST_DATA) + "/models/" + name + "/";
}

std::vector<Tensor> load_references(const std::string& name, size_t count) {
  std::vector<Tensor> refs;
  for (size_t k = 0; k < count; ++k)
    refs.push_back(load_npy(fixture_dir(name) + "ort_output_" + std::to_string(k) + ".npy"));
  return refs;
}

struct Difference {
  double max_abs = 0;       // largest |a - b|
  double max_ref = 0;       // largest |b|
  double max_rel = 0;       // largest |a - b| / max(|b|, 1% of max_ref), for the record
  int64_t bad_index = -1;   // first element breaking the rule, or a NaN
};

Difference compare(const Tensor& actual, const Tensor& reference) {
  std::vector<float> a = actual.to_vector<float>();
  std::vector<float> b = reference.to_vector<float>();
  Difference d;
  for (float v : b) d.max_ref = std::max(d.max_ref, std::fabs(double{v}));
  for (size_t i = 0; i < b.size(); ++i) {
    double err = std::fabs(double{a[i]} - double{b[i]});
    double mag = std::fabs(double{b[i]});
    if (std::isnan(err) && d.bad_index < 0) d.bad_index = static_cast<int64_t>(i);
    d.max_abs = std::max(d.max_abs, err);
    d.max_rel = std::max(d.max_rel, err / std::max(mag, 1e-2 * d.max_ref));
    if (err > kTolerance * d.max_ref && d.bad_index < 0) d.bad_index = static_cast<int64_t>(i);
  }
  return d;
}

// Checks graft's outputs (in the graph's output order) against references.
void expect_match(const Graph& graph, const TensorMap& got, const std::vector<Tensor>& refs,
                  const std::string& label) {
  ASSERT_EQ(graph.outputs.size(), refs.size()) << label;
  for (size_t k = 0; k < refs.size(); ++k) {
    const std::string& name = graph.outputs[k].name;
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << label << ": output " << name << " missing";
    const Tensor& out = it->second;
    ASSERT_EQ(out.dtype(), refs[k].dtype()) << label << " " << name;
    ASSERT_EQ(out.shape(), refs[k].shape())
        << label << " " << name << ": " << shape_str(out.shape()) << " vs ONNX Runtime's "
        << shape_str(refs[k].shape());
    Difference d = compare(out, refs[k]);
    std::printf("[ whole ] %-26s %-6s %-12s max abs %.2e  max abs/max|ref| %.2e"
                "  max rel (1%% floor) %.2e  max|ref| %.3f\n",
                label.c_str(), name.c_str(), shape_str(out.shape()).c_str(), d.max_abs,
                d.max_abs / d.max_ref, d.max_rel, d.max_ref);
    if (d.bad_index >= 0) {
      float a = out.to_vector<float>()[d.bad_index];
      float b = refs[k].to_vector<float>()[d.bad_index];
      ADD_FAILURE() << label << " " << name << ": element " << d.bad_index << " is " << a
                    << ", ONNX Runtime says " << b << " (allowed |diff| "
                    << kTolerance * d.max_ref << ")";
    }
  }
}

// Rows `rows` (indices along dimension 0) of a contiguous tensor, stacked.
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  Shape shape = t.shape();
  int64_t row_bytes = static_cast<int64_t>(t.nbytes()) / shape[0];
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out(t.dtype(), shape);
  auto* dst = static_cast<uint8_t*>(out.raw());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(dst + i * row_bytes, src + rows[i] * row_bytes, row_bytes);
  return out;
}

struct Fixture {
  const char* name;
  bool symbolic_batch;  // the model declares its batch dimension as a symbol
};

void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

const Fixture kFixtures[] = {
    {"mobilenet_v2_025", true},  // opset 13: depthwise Conv, Clip (ReLU6), Gemm
    {"resnet_small", false},     // opset 11, weights also listed as graph inputs
    {"tiny_detector", true},     // opset 13: ConvTranspose, Resize, Concat, shape ops
};

class WholeModel : public testing::TestWithParam<Fixture> {};

TEST_P(WholeModel, MatchesOnnxRuntime) {
  const std::string name = GetParam().name;
  Graph graph = load_onnx(fixture_dir(name) + "model.onnx");
  ASSERT_EQ(graph.inputs.size(), 1u);
  const std::string input_name = graph.inputs[0].name;
  Tensor input = load_npy(fixture_dir(name) + "input.npy");
  std::vector<Tensor> refs = load_references(name, graph.outputs.size());

  Session session(graph);
  expect_match(graph, session.run({{input_name, input}}), refs, name + " batch 2");
}

// The same session re-infers shapes for each new batch size; in eval mode
// every sample is independent, so the rows of the batch-2 reference apply.
TEST_P(WholeModel, SymbolicBatchRunsAtOtherSizes) {
  if (!GetParam().symbolic_batch) GTEST_SKIP() << "fixed batch dimension";
  const std::string name = GetParam().name;
  Graph graph = load_onnx(fixture_dir(name) + "model.onnx");
  ASSERT_TRUE(graph.inputs[0].shape.has_value());
  EXPECT_FALSE((*graph.inputs[0].shape)[0].symbol.empty());
  const std::string input_name = graph.inputs[0].name;
  Tensor input = load_npy(fixture_dir(name) + "input.npy");
  std::vector<Tensor> refs = load_references(name, graph.outputs.size());

  Session session(graph);
  for (const std::vector<int64_t>& rows : {std::vector<int64_t>{0}, {0, 1, 0}, {1}}) {
    std::vector<Tensor> row_refs;
    for (const Tensor& r : refs) row_refs.push_back(take_rows(r, rows));
    std::string label = name + " rows";
    for (int64_t r : rows) label += " " + std::to_string(r);
    expect_match(graph, session.run({{input_name, take_rows(input, rows)}}), row_refs, label);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WholeModel, testing::ValuesIn(kFixtures),
                         [](const testing::TestParamInfo<Fixture>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
