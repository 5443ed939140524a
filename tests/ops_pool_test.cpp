// Pooling: the cases the ONNX conformance data does not cover (ceil mode
// with padding, indices across batch and channels, other dtypes and ranks),
// checked by hand or against PyTorch, and every error message.
#include <gtest/gtest.h>

#include <algorithm>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

Tensor iota(Shape shape, float start = 1) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

}  // namespace

// Expected values from torch.nn.functional.avg_pool1d(1..6, 3, 2, padding=1,
// ceil_mode=True): the last window starts at 5 and runs past the end padding,
// which counts only up to the padded end.
TEST(AveragePool, CeilModeWithPadding) {
  std::map<std::string, Attribute> a = {{"kernel_shape", Shape{3}},
                                        {"strides", Shape{2}},
                                        {"pads", Shape{1, 1}},
                                        {"ceil_mode", int64_t{1}}};
  Tensor x = iota({1, 1, 6});
  EXPECT_EQ(OneNode({"AveragePool", 11, a, {x}}).run1().to_vector<float>(),
            (std::vector<float>{1.5f, 3, 5, 6}));
  a["count_include_pad"] = int64_t{1};
  EXPECT_EQ(OneNode({"AveragePool", 11, a, {x}}).run1().to_vector<float>(),
            (std::vector<float>{1, 3, 5, 3}));
}

// Ceil mode never starts a window in the end padding: 5 values, kernel 2,
// stride 2, pads 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows would start at
// -1, 1, 3, 5, and the last one lies wholly in the padding.
TEST(AveragePool, CeilModeDropsWindowStartingInPadding) {
  std::map<std::string, Attribute> a = {{"kernel_shape", Shape{2}},
                                        {"strides", Shape{2}},
                                        {"pads", Shape{1, 1}},
                                        {"ceil_mode", int64_t{1}}};
  EXPECT_EQ(OneNode({"AveragePool", 11, a, {iota({1, 1, 5})}}).run1().to_vector<float>(),
            (std::vector<float>{1, 2.5f, 4.5f}));
}

TEST(AveragePool, DoubleAndDilations) {
  Tensor x = iota({1, 1, 5}).cast(DType::kF64);
  OneNode n{"AveragePool", 19, {{"kernel_shape", Shape{2}}, {"dilations", Shape{3}}}, {x}};
  Tensor y = n.run1();
  EXPECT_EQ(y.dtype(), DType::kF64);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{2.5, 3.5}));  // (1+4)/2, (2+5)/2
}

// Values and indices from torch.nn.functional.max_pool2d(..., 2, 2,
// ceil_mode=True, return_indices=True); ONNX's indices add each plane's
// offset (plane * 12). Ties keep the first maximum.
TEST(MaxPool, IndicesCountBatchAndChannels) {
  Tensor x = Tensor::from_vector<float>(
      {2, 2, 3, 4},
      {1, 5, 2, 0, 3, 4, 9, 1, 0, 2, 8, 8, 7,  1,  1,  7,  2,  2,  2,  2,  6,  0,  0,  6,
       1, 0, 0, 0, 0, 0, 0, 3, 0, 5, 0, 0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -9, -9, -9});
  OneNode n{"MaxPool",
            12,
            {{"kernel_shape", Shape{2, 2}}, {"strides", Shape{2, 2}}, {"ceil_mode", int64_t{1}}},
            {x},
            {},
            2};
  std::vector<Tensor> y = n.run();
  EXPECT_EQ(y[0].shape(), (Shape{2, 2, 2, 2}));
  EXPECT_EQ(y[0].to_vector<float>(),
            (std::vector<float>{5, 9, 2, 8, 7, 7, 6, 6, 1, 3, 5, 0, -1, -3, -9, -9}));
  EXPECT_EQ(y[1].to_vector<int64_t>(),
            (std::vector<int64_t>{1, 6, 9, 10, 12, 15, 20, 23, 24, 31, 33, 34, 36, 38, 44, 46}));
}

// Column-major indices: position (h, w) of a 3x4 plane is h + 3 * w.
TEST(MaxPool, IndicesInColumnMajorOrder) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3, 4}, {1, 5, 2, 0, 3, 4, 9, 1, 0, 2, 8, 8});
  OneNode n{"MaxPool",
            12,
            {{"kernel_shape", Shape{2, 2}},
             {"strides", Shape{2, 2}},
             {"ceil_mode", int64_t{1}},
             {"storage_order", int64_t{1}}},
            {x},
            {},
            2};
  EXPECT_EQ(n.run()[1].to_vector<int64_t>(), (std::vector<int64_t>{3, 7, 5, 8}));
}

// Padding never wins a max, even when every value is negative.
TEST(MaxPool, Int8AndNegativeValuesWithPadding) {
  Tensor x = Tensor::from_vector<int8_t>({1, 1, 4}, {-7, -3, -128, -5});
  OneNode n{"MaxPool", 12, {{"kernel_shape", Shape{2}}, {"pads", Shape{1, 1}}}, {x}};
  Tensor y = n.run1();
  EXPECT_EQ(y.dtype(), DType::kI8);
  EXPECT_EQ(y.to_vector<int>(), (std::vector<int>{-7, -3, -3, -5, -5}));
}

// 2 spatial sizes 1..10 with kernel 3, dilation 2, stride 3, pads 2 and ceil
// mode: windows start at -2, 1, 4, 7 (the last stays: 7 < 10 + 2).
TEST(MaxPool, DilationStrideCeilMode) {
  OneNode n{"MaxPool",
            12,
            {{"kernel_shape", Shape{3}},
             {"dilations", Shape{2}},
             {"strides", Shape{3}},
             {"pads", Shape{2, 2}},
             {"ceil_mode", int64_t{1}}},
            {iota({1, 1, 10})}};
  // taps -2,0,2 -> 1,3; 1,3,5 -> 6; 4,6,8 -> 9; 7,9,11 -> 10
  EXPECT_EQ(n.run1().to_vector<float>(), (std::vector<float>{3, 6, 9, 10}));
}

TEST(GlobalPool, AnyRank) {
  Tensor x = iota({2, 2, 2, 1, 3});
  Tensor avg = OneNode{"GlobalAveragePool", 1, {}, {x}}.run1();
  EXPECT_EQ(avg.shape(), (Shape{2, 2, 1, 1, 1}));
  EXPECT_EQ(avg.to_vector<float>(), (std::vector<float>{3.5f, 9.5f, 15.5f, 21.5f}));
  Tensor mx = OneNode{"GlobalMaxPool", 1, {}, {iota({1, 3, 2}, -10)}}.run1();
  EXPECT_EQ(mx.shape(), (Shape{1, 3, 1}));
  EXPECT_EQ(mx.to_vector<float>(), (std::vector<float>{-9, -7, -5}));
  Tensor d = OneNode{"GlobalAveragePool", 1, {}, {iota({1, 2}).cast(DType::kF64)}}.run1();
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1, 2}));
}

TEST(Pool, Errors) {
  Tensor x = iota({1, 1, 4, 4});
  auto pool = [](const char* op, std::map<std::string, Attribute> a, Tensor in) {
    return [op, a, in] { OneNode{op, 12, a, {in}}.run(); };
  };
  Shape k = {2, 2};
  using K = ErrorKind;
  expect_error(pool("MaxPool", {{"kernel_shape", k}, {"ceil_mode", int64_t{2}}}, x),
               K::kUnsupported, "ceil_mode 2 is not supported (0 or 1)");
  expect_error(pool("AveragePool", {{"kernel_shape", k}, {"count_include_pad", int64_t{-1}}}, x),
               K::kUnsupported, "count_include_pad -1 is not supported (0 or 1)");
  expect_error(pool("MaxPool", {{"kernel_shape", k}, {"storage_order", int64_t{3}}}, x),
               K::kUnsupported, "storage_order 3 is not supported (0 or 1)");
  expect_error(pool("MaxPool", {{"kernel_shape", k}, {"auto_pad", std::string("same")}}, x),
               K::kUnsupported, "auto_pad 'same' is not supported");
  expect_error(pool("AveragePool", {}, x), K::kInvalidArgument,
               "attribute 'kernel_shape' is required");
  expect_error(pool("AveragePool", {{"kernel_shape", Shape{2}}}, x), K::kInvalidArgument,
               "attribute 'kernel_shape' has 1 values; the input has 2 spatial axes");
  expect_error(pool("MaxPool", {{"kernel_shape", Shape{2, 0}}}, x), K::kInvalidArgument,
               "kernel size 0 on spatial axis 1");
  expect_error(
      pool("MaxPool", {{"kernel_shape", Shape{5, 2}}}, x), K::kInvalidArgument,
      "window of 5 (kernel 5, dilation 1) is larger than the padded input 4 on spatial axis 0");
  expect_error(pool("MaxPool", {{"kernel_shape", Shape{2}}}, iota({4, 4})), K::kInvalidArgument,
               "input has shape 4x4; MaxPool needs N x C x D1 x ... (at least one spatial axis)");
  expect_error(pool("MaxPool", {{"kernel_shape", k}}, x.cast(DType::kI64)), K::kUnsupported,
               "input 0 has dtype int64");
  expect_error(pool("GlobalMaxPool", {}, iota({4})), K::kInvalidArgument,
               "input has shape 4; GlobalMaxPool needs N x C x ...");
  expect_error(pool("GlobalAveragePool", {}, x.cast(DType::kI32)), K::kUnsupported,
               "input 0 has dtype int32");
}
