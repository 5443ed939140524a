// Gradient rules of Conv and ConvTranspose against finite differences, for
// X, W and B: every rank, strides, asymmetric pads, dilations, groups
// (grouped, depthwise, channel multiplier > 1), every auto_pad, and
// ConvTranspose's output_padding and output_shape.
#include "gradcheck.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

// x, w and (unless bias_channels is 0) b from independent seeds.
void check(const std::string& op, Shape x, Shape w, int64_t bias_channels, Attrs attrs = {}) {
  std::vector<Tensor> inputs = {random_tensor(std::move(x), 1), random_tensor(std::move(w), 2)};
  if (bias_channels > 0) inputs.push_back(random_tensor({bias_channels}, 3));
  GradCheck gc{make_node(op, static_cast<int>(inputs.size()), 1, std::move(attrs)),
               std::move(inputs)};
  expect_gradients_match(gc);
}

}  // namespace

TEST(ConvGrad, OneDimensional) {
  check("Conv", {2, 2, 7}, {3, 2, 3}, 3);
  check("Conv", {2, 2, 9}, {3, 2, 3}, 3,
        {{"strides", Ints{2}}, {"pads", Ints{1, 2}}, {"dilations", Ints{2}}});
}

TEST(ConvGrad, TwoDimensional) {
  check("Conv", {1, 2, 5, 5}, {2, 2, 3, 3}, 2);
  check("Conv", {1, 2, 5, 5}, {2, 2, 3, 3}, 0);  // no bias
  check("Conv", {2, 2, 5, 4}, {3, 2, 2, 3}, 3, {{"kernel_shape", Ints{2, 3}}});
  // Different stride, dilation and asymmetric pads on each axis.
  check("Conv", {1, 2, 6, 7}, {2, 2, 3, 2}, 2,
        {{"strides", Ints{2, 1}}, {"pads", Ints{1, 0, 0, 2}}, {"dilations", Ints{1, 2}}});
  // A stride that skips the last input rows: they get no gradient.
  check("Conv", {1, 1, 6, 6}, {1, 1, 2, 2}, 1, {{"strides", Ints{3, 3}}});
}

TEST(ConvGrad, ThreeDimensional) {
  check("Conv", {1, 2, 3, 4, 4}, {2, 2, 2, 3, 2}, 2);
  check(
      "Conv", {1, 2, 4, 4, 5}, {2, 2, 2, 2, 3}, 2,
      {{"strides", Ints{1, 2, 2}}, {"pads", Ints{1, 0, 1, 0, 1, 1}}, {"dilations", Ints{2, 1, 1}}});
}

TEST(ConvGrad, Groups) {
  check("Conv", {1, 4, 4, 4}, {4, 2, 2, 2}, 4, {{"group", int64_t{2}}});
  // Depthwise: one filter per channel.
  check("Conv", {2, 3, 5, 5}, {3, 1, 3, 3}, 3, {{"group", int64_t{3}}, {"pads", Ints{1, 1, 1, 1}}});
  // Channel multiplier 2: each input channel feeds two output channels.
  check("Conv", {1, 2, 4, 5}, {4, 1, 3, 3}, 4,
        {{"group", int64_t{2}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
  check("Conv", {1, 3, 3, 3, 3}, {6, 1, 2, 2, 2}, 6, {{"group", int64_t{3}}});
  check("Conv", {1, 4, 9}, {2, 2, 3}, 2, {{"group", int64_t{2}}, {"dilations", Ints{3}}});
}

TEST(ConvGrad, EveryAutoPad) {
  // Odd sizes and stride 2 make SAME's padding asymmetric, so UPPER and
  // LOWER differ.
  for (const char* mode : {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"}) {
    SCOPED_TRACE(mode);
    check("Conv", {1, 2, 5, 6}, {2, 2, 2, 3}, 2,
          {{"auto_pad", std::string(mode)}, {"strides", Ints{2, 2}}});
    check("Conv", {1, 2, 7}, {3, 2, 2}, 3,
          {{"auto_pad", std::string(mode)}, {"dilations", Ints{2}}});
    check("Conv", {1, 3, 5, 5}, {3, 1, 3, 3}, 3,
          {{"auto_pad", std::string(mode)}, {"group", int64_t{3}}, {"strides", Ints{2, 1}}});
  }
}

TEST(ConvTransposeGrad, OneDimensional) {
  check("ConvTranspose", {2, 2, 4}, {2, 3, 3}, 3);
  check("ConvTranspose", {1, 2, 4}, {2, 3, 3}, 3,
        {{"strides", Ints{3}}, {"pads", Ints{1, 2}}, {"dilations", Ints{2}}});
}

TEST(ConvTransposeGrad, TwoDimensional) {
  check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 3, 3}, 2);
  check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 3, 3}, 0);  // no bias
  check("ConvTranspose", {1, 2, 3, 4}, {2, 2, 3, 2}, 2,
        {{"strides", Ints{2, 3}}, {"pads", Ints{1, 0, 0, 1}}, {"dilations", Ints{1, 2}}});
  check("ConvTranspose", {2, 1, 3, 3}, {1, 2, 2, 2}, 2,
        {{"strides", Ints{2, 2}}, {"output_padding", Ints{1, 0}}});
}

TEST(ConvTransposeGrad, ThreeDimensional) {
  check("ConvTranspose", {1, 2, 2, 3, 2}, {2, 2, 2, 2, 3}, 2);
  check("ConvTranspose", {1, 2, 2, 2, 3}, {2, 1, 2, 3, 2}, 1,
        {{"strides", Ints{2, 1, 2}},
         {"pads", Ints{0, 1, 1, 1, 0, 0}},
         {"output_padding", Ints{1, 0, 1}}});
}

TEST(ConvTransposeGrad, Groups) {
  check("ConvTranspose", {1, 4, 3, 3}, {4, 2, 2, 2}, 4, {{"group", int64_t{2}}});
  // Depthwise.
  check("ConvTranspose", {2, 3, 3, 3}, {3, 1, 3, 3}, 3,
        {{"group", int64_t{3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
  // Channel multiplier 2: each input channel feeds two output channels.
  check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 2, 3}, 4,
        {{"group", int64_t{2}}, {"strides", Ints{2, 1}}});
  check("ConvTranspose", {1, 2, 2, 2, 2}, {2, 3, 2, 2, 2}, 6, {{"group", int64_t{2}}});
}

TEST(ConvTransposeGrad, OutputShapeAndOutputPadding) {
  // output_shape within the full output (pads follow from it) and beyond it
  // (negative pads: the extra rows and columns get only the bias).
  check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 3, 3}, 2,
        {{"strides", Ints{2, 2}}, {"output_shape", Ints{6, 7}}});
  check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 3, 3}, 2,
        {{"strides", Ints{2, 2}}, {"output_shape", Ints{8, 9}}});
  check("ConvTranspose", {1, 1, 4}, {1, 2, 3}, 2,
        {{"strides", Ints{2}}, {"output_shape", Ints{1, 2, 8}}});  // with N and C
  check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 2, 2}, 2,
        {{"strides", Ints{3, 2}}, {"output_padding", Ints{2, 1}}, {"pads", Ints{1, 0, 0, 1}}});
}

TEST(ConvTransposeGrad, EveryAutoPad) {
  for (const char* mode : {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"}) {
    SCOPED_TRACE(mode);
    check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 2, 3}, 2,
          {{"auto_pad", std::string(mode)}, {"strides", Ints{2, 2}}});
    check("ConvTranspose", {1, 2, 4}, {2, 1, 3}, 1,
          {{"auto_pad", std::string(mode)}, {"dilations", Ints{2}}});
    check("ConvTranspose", {1, 2, 3, 3}, {2, 2, 3, 3}, 4,
          {{"auto_pad", std::string(mode)}, {"group", int64_t{2}}, {"strides", Ints{2, 1}}});
  }
}
