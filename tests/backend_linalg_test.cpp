// Gemm and MatMul on oneDNN against the reference kernels.
#include "backend_test_util.h"

namespace graft::test {
namespace {

struct GemmRow {
  const char* name;
  Shape a, b;
  std::optional<Shape> c;
  std::map<std::string, Attribute> attrs;
};

const std::vector<GemmRow> kGemmRows = {
    {"classifier 1280 -> 1000, batch 1",
     {1, 1280},
     {1000, 1280},
     Shape{1000},
     {{"transB", int64_t{1}}}},
    {"batch 3", {3, 20}, {20, 7}, Shape{7}, {}},
    {"transA", {20, 3}, {20, 7}, Shape{3, 7}, {{"transA", int64_t{1}}}},
    {"transA and transB",
     {20, 3},
     {7, 20},
     Shape{3, 1},
     {{"transA", int64_t{1}}, {"transB", int64_t{1}}}},
    {"C scalar", {3, 5}, {5, 4}, Shape{}, {}},
    {"C 1x1", {3, 5}, {5, 4}, Shape{1, 1}, {}},
    {"C 1 x N", {3, 5}, {5, 4}, Shape{1, 4}, {}},
    {"no C", {3, 5}, {5, 4}, std::nullopt, {}},
    {"beta 0.5", {3, 5}, {5, 4}, Shape{4}, {{"beta", 0.5f}}},
    {"alpha 2 without C", {3, 5}, {4, 5}, std::nullopt, {{"alpha", 2.0f}, {"transB", int64_t{1}}}},
};

FastCase gemm_case(const GemmRow& row) {
  FastCase fc;
  fc.node = make_node("Gemm", row.c ? 3 : 2, 1, row.attrs);
  fc.inputs = {uniform(row.a, 31), uniform(row.b, 32)};
  if (row.c) fc.inputs.push_back(uniform(*row.c, 33));
  return fc;
}

TEST(BackendGemm, MatchesReferenceOverTheTable) {
  for (const GemmRow& row : kGemmRows) {
    SCOPED_TRACE(row.name);
    expect_fast_matches_reference(gemm_case(row));
  }
}

TEST(BackendGemm, EachGradientAlone) {
  for (int wanted : {0, 1, 2}) {
    FastCase fc = gemm_case(kGemmRows[3]);
    fc.wanted = {wanted};
    SCOPED_TRACE(wanted);
    expect_fast_matches_reference(fc);
  }
}

TEST(BackendGemm, AlphaWithCDeclinesTheForward) {
  // oneDNN would scale C by alpha too; the backward (no bias) is served.
  GemmRow row{"", {3, 5}, {5, 4}, Shape{4}, {{"alpha", 2.0f}, {"beta", 0.5f}}};
  expect_served(gemm_case(row), false, true);
}

TEST(BackendGemm, IntegersStayOnTheReference) {
  FastCase fc;
  fc.node = make_node("Gemm", 2, 1);
  fc.inputs = {uniform({2, 3}, 1, -5, 5).cast(DType::kI32),
               uniform({3, 2}, 2, -5, 5).cast(DType::kI32)};
  fc.backward = false;
  expect_served(fc, false, false);
}

struct MatMulRow {
  const char* name;
  Shape a, b;
  bool backward_served = true;
};

const std::vector<MatMulRow> kMatMulRows = {
    {"2-D", {3, 5}, {5, 4}},
    {"batched", {2, 3, 5}, {2, 5, 4}},
    {"4-D batched", {2, 3, 4, 5}, {2, 3, 5, 2}},
    {"shared B (a linear layer)", {2, 3, 5}, {5, 4}},
    {"shared B with a batch axis of 1", {2, 3, 5}, {1, 5, 4}},
    {"vector times matrix", {5}, {5, 4}},
    {"matrix times vector", {3, 5}, {5}},
    {"batched times vector", {2, 3, 5}, {5}},
    {"shared A", {3, 5}, {2, 5, 4}, false},
    {"both broadcast", {2, 1, 3, 5}, {1, 4, 5, 2}, false},
};

TEST(BackendMatMul, MatchesReferenceOverTheTable) {
  for (const MatMulRow& row : kMatMulRows) {
    SCOPED_TRACE(row.name);
    FastCase fc;
    fc.node = make_node("MatMul", 2, 1);
    fc.inputs = {uniform(row.a, 41), uniform(row.b, 42)};
    expect_served(fc, true, row.backward_served);
  }
}

TEST(BackendMatMul, EachGradientAlone) {
  for (const MatMulRow& row : {kMatMulRows[1], kMatMulRows[3]}) {
    for (int wanted : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << row.name << ", gradient " << wanted);
      FastCase fc;
      fc.node = make_node("MatMul", 2, 1);
      fc.inputs = {uniform(row.a, 41), uniform(row.b, 42)};
      fc.wanted = {wanted};
      expect_fast_matches_reference(fc);
    }
  }
}

TEST(BackendMatMul, SharedAServesAGradientOfBAlone) {
  // Only dA of a shared A needs a sum the primitive cannot do.
  FastCase fc;
  fc.node = make_node("MatMul", 2, 1);
  fc.inputs = {uniform({3, 5}, 41), uniform({2, 5, 4}, 42)};
  fc.wanted = {1};
  expect_served(fc, true, false);
}

}  // namespace
}  // namespace graft::test
