// Conv's oneDNN kernels against the reference kernel: forward, dX, dW and
// dB over a table of shapes and attributes.
#include <algorithm>

#include "backend_test_util.h"

namespace graft::test {
namespace {

using Ints = std::vector<int64_t>;

struct ConvRow {
  const char* name;
  Shape x, w;
  std::map<std::string, Attribute> attrs;
  bool bias = true;
};

// group = C_in / w[1]; depthwise when w[1] == 1.
const std::vector<ConvRow> kConvRows = {
    {"plain 3x3", {1, 4, 7, 7}, {6, 4, 3, 3}, {}},
    {"batch 3, padded", {3, 4, 7, 6}, {5, 4, 3, 3}, {{"pads", Ints{1, 1, 1, 1}}}},
    {"no bias", {3, 4, 7, 6}, {5, 4, 3, 3}, {{"pads", Ints{1, 1, 1, 1}}}, false},
    {"1x1 pointwise", {3, 16, 5, 5}, {24, 16, 1, 1}, {}},
    {"1x1 pointwise, no bias", {3, 16, 5, 5}, {24, 16, 1, 1}, {}, false},
    {"1x1 pointwise, 14x14 planes (dW shared out by image)", {5, 32, 14, 14}, {48, 32, 1, 1}, {}},
    {"1x1 pointwise 1-D", {3, 8, 9}, {4, 8, 1}, {}},
    {"1x1 pointwise 3-D", {2, 4, 3, 3, 3}, {5, 4, 1, 1, 1}, {}},
    {"1x1 strided", {1, 8, 6, 6}, {4, 8, 1, 1}, {{"strides", Ints{2, 2}}}},
    {"1x1 padded", {1, 8, 4, 4}, {4, 8, 1, 1}, {{"pads", Ints{1, 0, 0, 1}}}},
    {"first conv: 3 channels, stride 2",
     {1, 3, 15, 15},
     {8, 3, 3, 3},
     {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"first conv in bands of output rows, the last shorter",
     {2, 3, 281, 81},
     {4, 3, 3, 3},
     {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"stride 2x1", {3, 4, 9, 8}, {5, 4, 3, 3}, {{"strides", Ints{2, 1}}}},
    {"asymmetric pads", {3, 4, 7, 6}, {5, 4, 3, 2}, {{"pads", Ints{0, 1, 2, 0}}}},
    {"pads larger than needed",
     {1, 2, 5, 5},
     {3, 2, 3, 3},
     {{"pads", Ints{2, 2, 2, 2}}, {"strides", Ints{2, 2}}}},
    {"dilation 2", {3, 4, 9, 9}, {5, 4, 3, 3}, {{"dilations", Ints{2, 2}}}},
    {"dilation 1x2 with pads",
     {1, 4, 9, 9},
     {5, 4, 3, 3},
     {{"dilations", Ints{1, 2}}, {"pads", Ints{1, 2, 1, 2}}}},
    {"2 groups", {3, 6, 7, 7}, {4, 3, 3, 3}, {{"group", int64_t{2}}}},
    {"depthwise 3x3",
     {3, 8, 7, 7},
     {8, 1, 3, 3},
     {{"group", int64_t{8}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise stride 2",
     {1, 16, 8, 8},
     {16, 1, 3, 3},
     {{"group", int64_t{16}}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}},
    {"depthwise, multiplier 2", {3, 4, 6, 6}, {8, 1, 3, 3}, {{"group", int64_t{4}}}},
    {"depthwise 32 channels, batch 3",
     {3, 32, 9, 9},
     {32, 1, 3, 3},
     {{"group", int64_t{32}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"grouped 16 channels, multiplier 2, asymmetric pads",
     {1, 16, 7, 6},
     {32, 1, 3, 3},
     {{"group", int64_t{16}}, {"pads", Ints{0, 1, 2, 1}}, {"strides", Ints{2, 1}}}},
    {"1-D depthwise, 16 channels (oneDNN)",
     {3, 16, 11},
     {16, 1, 3},
     {{"group", int64_t{16}}, {"pads", Ints{1, 1}}}},
    {"3-D depthwise, 16 channels (oneDNN)",
     {1, 16, 4, 5, 4},
     {16, 1, 3, 3, 3},
     {{"group", int64_t{16}}, {"pads", Ints{1, 1, 1, 1, 1, 1}}}},
    {"depthwise, stride 2x1, asymmetric pads",
     {2, 5, 9, 8},
     {5, 1, 3, 3},
     {{"group", int64_t{5}}, {"pads", Ints{0, 1, 2, 1}}, {"strides", Ints{2, 1}}}},
    {"depthwise 5x5 stride 2, no bias",
     {2, 3, 11, 10},
     {3, 1, 5, 5},
     {{"group", int64_t{3}}, {"pads", Ints{2, 2, 2, 2}}, {"strides", Ints{2, 2}}},
     false},
    {"depthwise, kernel wider than the padded input and pads past the kernel",
     {1, 2, 4, 3},
     {2, 1, 3, 7},
     {{"group", int64_t{2}}, {"pads", Ints{4, 3, 4, 3}}, {"strides", Ints{1, 3}}}},
    {"depthwise 3x3 stride 2, odd sizes, asymmetric pads",
     {2, 6, 37, 29},
     {6, 1, 3, 3},
     {{"group", int64_t{6}}, {"pads", Ints{1, 0, 0, 1}}, {"strides", Ints{2, 2}}}},
    {"depthwise 3x3 stride 1x2, no padding",
     {1, 4, 20, 35},
     {4, 1, 3, 3},
     {{"group", int64_t{4}}, {"strides", Ints{1, 2}}}},
    {"depthwise 3x3 unit strides, no padding, 20 wide",
     {2, 3, 9, 20},
     {3, 1, 3, 3},
     {{"group", int64_t{3}}}},
    {"depthwise 3x3 unit strides, asymmetric pads, 17 wide",
     {2, 3, 8, 17},
     {3, 1, 3, 3},
     {{"group", int64_t{3}}, {"pads", Ints{0, 2, 2, 0}}}},
    {"depthwise 3x3 unit strides, pads 1, 28 wide (rows of two vectors)",
     {2, 3, 28, 28},
     {3, 1, 3, 3},
     {{"group", int64_t{3}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise 3x3 unit strides, pads 1, 31 wide",
     {2, 5, 6, 31},
     {5, 1, 3, 3},
     {{"group", int64_t{5}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise 3x3 unit strides, pads 1, 40 wide (rows of three vectors)",
     {1, 3, 5, 40},
     {3, 1, 3, 3},
     {{"group", int64_t{3}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise 3x3 unit strides, pads 1, 80 wide (rows of five vectors)",
     {1, 2, 4, 80},
     {2, 1, 3, 3},
     {{"group", int64_t{2}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise 3x3 stride 2, pads 1, 70 wide (outputs of three vectors)",
     {2, 3, 6, 70},
     {3, 1, 3, 3},
     {{"group", int64_t{3}}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}},
    {"depthwise 3x3 stride 2, pads 1, odd sizes, 37 wide",
     {1, 2, 7, 37},
     {2, 1, 3, 3},
     {{"group", int64_t{2}}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}},
    {"depthwise 3x3 unit strides, pads 1, 125 wide (rows of eight vectors, in two tiles)",
     {1, 2, 5, 125},
     {2, 1, 3, 3},
     {{"group", int64_t{2}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise 3x3 stride 2, pads 1, 250 wide (outputs of eight vectors)",
     {1, 2, 5, 250},
     {2, 1, 3, 3},
     {{"group", int64_t{2}}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}},
    {"depthwise MobileNetV2 112x112, batch 2",
     {2, 32, 112, 112},
     {32, 1, 3, 3},
     {{"group", int64_t{32}}, {"pads", Ints{1, 1, 1, 1}}}},
    {"depthwise dilated",
     {1, 4, 9, 9},
     {4, 1, 3, 3},
     {{"group", int64_t{4}}, {"dilations", Ints{2, 2}}, {"pads", Ints{2, 2, 2, 2}}}},
    {"SAME_UPPER",
     {3, 4, 7, 6},
     {5, 4, 2, 3},
     {{"auto_pad", std::string("SAME_UPPER")}, {"strides", Ints{2, 2}}}},
    {"SAME_LOWER",
     {3, 4, 7, 6},
     {5, 4, 2, 3},
     {{"auto_pad", std::string("SAME_LOWER")}, {"strides", Ints{2, 2}}}},
    {"VALID",
     {3, 4, 7, 6},
     {5, 4, 3, 3},
     {{"auto_pad", std::string("VALID")}, {"pads", Ints{1, 1, 1, 1}}}},
    {"1-D", {3, 4, 11}, {5, 4, 3}, {{"pads", Ints{1, 2}}, {"strides", Ints{2}}}},
    {"1-D depthwise", {1, 4, 11}, {4, 1, 5}, {{"group", int64_t{4}}}},
    {"3-D", {1, 2, 5, 4, 5}, {3, 2, 2, 3, 2}, {{"pads", Ints{0, 1, 1, 1, 0, 0}}}},
    {"3-D batch 3 strided",
     {3, 2, 5, 5, 5},
     {4, 2, 3, 3, 3},
     {{"strides", Ints{2, 1, 2}}, {"pads", Ints{1, 1, 1, 1, 1, 1}}}},
    {"1x1 pointwise, 56x56 planes: Y in bands of 24 rows", {2, 8, 56, 56}, {48, 8, 1, 1}, {}},
    {"1x1 pointwise, 56x56 planes: dX in bands of 24 rows", {2, 48, 56, 56}, {8, 48, 1, 1}, {}},
    {"1x1 pointwise, 7x7 planes, batch 8: channels-last", {8, 16, 7, 7}, {24, 16, 1, 1}, {}},
    {"1x1 pointwise, 1x1 planes (a head), batch 16: channels-last, no turn",
     {16, 64, 1, 1},
     {4, 64, 1, 1},
     {}},
    {"1x1 pointwise, 2x1 planes, batch 8: channels-last", {8, 16, 2, 1}, {6, 16, 1, 1}, {}},
    {"1x1 pointwise, 3x3 planes, batch 9, no bias: channels-last",
     {9, 8, 3, 3},
     {12, 8, 1, 1},
     {},
     false},
};

FastCase conv_case(const ConvRow& row) {
  FastCase fc;
  fc.node = make_node("Conv", row.bias ? 3 : 2, 1, row.attrs);
  fc.inputs = {uniform(row.x, 1), uniform(row.w, 2)};
  if (row.bias) fc.inputs.push_back(uniform({row.w[0]}, 3));
  return fc;
}

TEST(BackendConv, MatchesReferenceOverTheTable) {
  for (const ConvRow& row : kConvRows) {
    SCOPED_TRACE(row.name);
    expect_fast_matches_reference(conv_case(row));
  }
}

TEST(BackendConv, EachGradientAlone) {
  // The backward pass writes only what is asked for; the rest comes from
  // scratch (dW without dB and the reverse share one primitive).
  for (const ConvRow& row : {kConvRows[1], kConvRows[3], kConvRows[17]}) {
    for (std::vector<int> wanted : {std::vector<int>{0}, {1}, {2}, {1, 2}, {0, 2}}) {
      FastCase fc = conv_case(row);
      fc.wanted = wanted;
      SCOPED_TRACE(::testing::Message() << row.name << ", gradient of input " << wanted[0]);
      expect_fast_matches_reference(fc);
    }
  }
}

// Few input values under the window (unfolded_conv.cpp): the weights' and
// bias's gradients without the input's, as of a network's first layer.
TEST(BackendConv, FewInputChannelsWithoutTheInputGradient) {
  for (const char* name : {"first conv: 3 channels, stride 2",
                           "first conv in bands of output rows, the last shorter",
                           "pads larger than needed", "asymmetric pads"}) {
    const ConvRow& row = *std::find_if(kConvRows.begin(), kConvRows.end(),
                                       [&](const ConvRow& r) { return r.name == std::string(name); });
    for (std::vector<int> wanted : {std::vector<int>{1}, {2}, {1, 2}}) {
      FastCase fc = conv_case(row);
      fc.wanted = wanted;
      SCOPED_TRACE(::testing::Message() << name << ", gradients of " << wanted.size() << " inputs");
      expect_fast_matches_reference(fc);
    }
  }
}

TEST(BackendConv, RepeatedRunsReuseTheCachedPrimitive) {
  FastCase fc = conv_case(kConvRows[1]);
  PathResult first = run_path(fc, false);
  PathResult second = run_path(fc, false);
  expect_same_results(second, first, 0);
}

TEST(BackendConv, Float64DeclinesToTheReference) {
  FastCase fc;
  fc.node = make_node("Conv", 2, 1, {{"pads", Ints{1, 1, 1, 1}}});
  fc.inputs = {uniform({1, 2, 5, 5}, 1).cast(DType::kF64),
               uniform({3, 2, 3, 3}, 2).cast(DType::kF64)};
  expect_served(fc, false, false);
}

TEST(BackendConv, ConvTransposeStaysOnTheReference) {
  FastCase fc;
  fc.node = make_node("ConvTranspose", 2, 1, {{"strides", Ints{2, 2}}});
  fc.inputs = {uniform({1, 2, 4, 4}, 1), uniform({2, 3, 3, 3}, 2)};
  expect_served(fc, false, false);
}

TEST(BackendConv, EmptyBatchDeclines) {
  FastCase fc;
  fc.node = make_node("Conv", 2, 1);
  fc.inputs = {uniform({0, 2, 5, 5}, 1), uniform({3, 2, 3, 3}, 2)};
  expect_served(fc, false, false);
}

}  // namespace
}  // namespace graft::test
