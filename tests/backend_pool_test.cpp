// Pooling's oneDNN kernels against the reference kernels, and the cases
// that must decline to them.
#include "backend_test_util.h"

namespace graft::test {
namespace {

using Ints = std::vector<int64_t>;

struct PoolRow {
  const char* name;
  const char* op;
  Shape x;
  std::map<std::string, Attribute> attrs;
};

const std::vector<PoolRow> kServedRows = {
    {"max 2x2/2", "MaxPool", {1, 3, 8, 8}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}},
    {"max 3x3/1 padded, batch 3",
     "MaxPool",
     {3, 4, 7, 6},
     {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"max asymmetric pads",
     "MaxPool",
     {3, 2, 7, 6},
     {{"kernel_shape", Ints{3, 2}}, {"pads", Ints{0, 1, 2, 0}}, {"strides", Ints{2, 1}}}},
    {"max dilated",
     "MaxPool",
     {1, 2, 9, 9},
     {{"kernel_shape", Ints{3, 3}}, {"dilations", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"max ceil_mode",
     "MaxPool",
     {3, 2, 8, 7},
     {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}}},
    {"max SAME_UPPER",
     "MaxPool",
     {1, 2, 7, 6},
     {{"kernel_shape", Ints{3, 2}},
      {"strides", Ints{2, 2}},
      {"auto_pad", std::string("SAME_UPPER")}}},
    {"max SAME_LOWER",
     "MaxPool",
     {1, 2, 7, 6},
     {{"kernel_shape", Ints{3, 2}},
      {"strides", Ints{2, 2}},
      {"auto_pad", std::string("SAME_LOWER")}}},
    {"max VALID",
     "MaxPool",
     {1, 2, 7, 6},
     {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"auto_pad", std::string("VALID")}}},
    {"max 1-D", "MaxPool", {3, 2, 11}, {{"kernel_shape", Ints{3}}, {"strides", Ints{2}}}},
    {"max 3-D",
     "MaxPool",
     {1, 2, 5, 6, 5},
     {{"kernel_shape", Ints{2, 2, 2}}, {"pads", Ints{1, 0, 1, 0, 1, 0}}}},
    {"average exclude pad",
     "AveragePool",
     {3, 4, 7, 6},
     {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"average include pad",
     "AveragePool",
     {3, 4, 7, 6},
     {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}, {"count_include_pad", int64_t{1}}}},
    {"average include asymmetric pad",
     "AveragePool",
     {1, 2, 7, 6},
     {{"kernel_shape", Ints{3, 2}}, {"pads", Ints{2, 0, 0, 1}}, {"count_include_pad", int64_t{1}}}},
    {"average ceil_mode exclude pad",
     "AveragePool",
     {3, 2, 8, 7},
     {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}}},
    {"average strided",
     "AveragePool",
     {1, 2, 9, 8},
     {{"kernel_shape", Ints{2, 3}}, {"strides", Ints{2, 3}}}},
    {"average SAME_UPPER",
     "AveragePool",
     {1, 2, 7, 6},
     {{"kernel_shape", Ints{3, 3}},
      {"strides", Ints{2, 2}},
      {"auto_pad", std::string("SAME_UPPER")}}},
    {"average 1-D", "AveragePool", {3, 2, 11}, {{"kernel_shape", Ints{3}}, {"pads", Ints{1, 1}}}},
    {"average 3-D", "AveragePool", {1, 2, 4, 5, 6}, {{"kernel_shape", Ints{2, 3, 2}}}},
    {"global average", "GlobalAveragePool", {3, 5, 7, 7}, {}},
    {"global average 1x1280x7x7", "GlobalAveragePool", {1, 1280, 7, 7}, {}},
    {"global average 1-D", "GlobalAveragePool", {3, 4, 9}, {}},
    {"global average 3-D", "GlobalAveragePool", {1, 4, 3, 4, 5}, {}},
};

FastCase pool_case(const PoolRow& row, int outputs = 1) {
  FastCase fc;
  fc.node = make_node(row.op, 1, outputs, row.attrs);
  fc.inputs = {uniform(row.x, 11)};
  return fc;
}

TEST(BackendPool, MatchesReferenceOverTheTable) {
  for (const PoolRow& row : kServedRows) {
    SCOPED_TRACE(row.name);
    expect_fast_matches_reference(pool_case(row));
  }
}

TEST(BackendPool, MaxPoolTiesGoToTheFirstMaximumOnBothPaths) {
  // Values from a handful of levels: most windows hold several equal maxima.
  FastCase fc = pool_case(kServedRows[1]);
  Tensor& x = fc.inputs[0];
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 7) % 3);
  expect_fast_matches_reference(fc);
}

TEST(BackendPool, MaxPoolWithIndicesDeclines) {
  // oneDNN's workspace is not ONNX's Indices output.
  FastCase fc = pool_case(kServedRows[1], 2);
  expect_served(fc, false, true);
}

TEST(BackendPool, AverageIncludingPadWhereCeilModePassesThePadsDeclines) {
  // ceil_mode adds a last window reaching past the end padding: ONNX counts
  // only taps inside the padded input, oneDNN the whole window.
  PoolRow row{"",
              "AveragePool",
              {1, 2, 6, 6},
              {{"kernel_shape", Ints{3, 3}},
               {"strides", Ints{2, 2}},
               {"pads", Ints{1, 1, 1, 1}},
               {"ceil_mode", int64_t{1}},
               {"count_include_pad", int64_t{1}}}};
  expect_served(pool_case(row), false, false);
}

TEST(BackendPool, AverageIncludingPadWithCeilModeInsideThePadsIsServed) {
  PoolRow row{"",
              "AveragePool",
              {1, 2, 7, 7},
              {{"kernel_shape", Ints{3, 3}},
               {"strides", Ints{2, 2}},
               {"pads", Ints{1, 1, 1, 1}},
               {"ceil_mode", int64_t{1}},
               {"count_include_pad", int64_t{1}}}};
  expect_fast_matches_reference(pool_case(row));
}

TEST(BackendPool, WindowWhollyInThePaddingDeclines) {
  // Pads as large as the window: the first window sees no input element.
  for (const char* op : {"MaxPool", "AveragePool"}) {
    PoolRow row{"", op, {1, 2, 5, 5}, {{"kernel_shape", Ints{2, 2}}, {"pads", Ints{2, 2, 2, 2}}}};
    SCOPED_TRACE(op);
    expect_served(pool_case(row), false, false);
  }
}

TEST(BackendPool, OtherDtypesAndGlobalMaxPoolStayOnTheReference) {
  FastCase f64 = pool_case(kServedRows[0]);
  f64.inputs[0] = f64.inputs[0].cast(DType::kF64);
  expect_served(f64, false, false);

  FastCase global_max = pool_case({"", "GlobalMaxPool", {1, 3, 4, 4}, {}});
  expect_served(global_max, false, false);

  FastCase u8;
  u8.node = make_node("MaxPool", 1, 1, {{"kernel_shape", Ints{2, 2}}});
  u8.inputs = {uniform({1, 2, 4, 4}, 3, 0, 200).cast(DType::kU8)};
  u8.backward = false;
  PathResult fast = run_path(u8, false);
  PathResult ref = run_path(u8, true);
  EXPECT_EQ(fast.forward_served, 0);
  expect_close(fast.outputs[0], ref.outputs[0], 0, "uint8 MaxPool");
}

}  // namespace
}  // namespace graft::test
