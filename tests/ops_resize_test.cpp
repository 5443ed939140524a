// Resize and Upsample: the cases the ONNX conformance data does not cover
// (Upsample's linear mode and attribute form, Resize-10, other dtypes, 1-D
// and 3-D inputs, scales that change between runs) and every error message.
#include <gtest/gtest.h>

#include <algorithm>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

Tensor f32(Shape shape, std::vector<float> v) { return Tensor::from_vector<float>(shape, v); }
Tensor i64(Shape shape, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(shape, v); }
Tensor none() { return Tensor(); }

void expect_near(const std::vector<double>& got, const std::vector<double>& want,
                 double tol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// Resize-13 of x with sizes given, and string attributes.
Tensor resize_sizes(Tensor x, std::vector<int64_t> sizes, std::map<std::string, Attribute> attrs,
                    Tensor roi = Tensor()) {
  Shape s{static_cast<int64_t>(sizes.size())};
  return OneNode{"Resize", 13, attrs, {x, roi, none(), i64(s, sizes)}}.run1();
}

}  // namespace

// --- Upsample --------------------------------------------------------------

TEST(Upsample, Opset7ScalesAttributeNearest) {
  Tensor y =
      OneNode{"Upsample", 7, {{"scales", std::vector<float>{1, 2}}}, {f32({2, 2}, {1, 2, 3, 4})}}
          .run1();
  EXPECT_EQ(y.shape(), (Shape{2, 4}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4}));
}

TEST(Upsample, Opset9BilinearUsesAsymmetricCoordinatesClampedAtTheEdge) {
  // Output row/column i reads input i / 2: 0, 0.5, 1, 1.5 (clamped to 1).
  Tensor y = OneNode{"Upsample",
                     9,
                     {{"mode", std::string("linear")}},
                     {f32({1, 1, 2, 2}, {1, 2, 3, 4}), f32({4}, {1, 1, 2, 2})}}
                 .run1();
  EXPECT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  expect_near(y.to_vector<double>(), {1, 1.5, 2, 2,  //
                                      2, 2.5, 3, 3,  //
                                      3, 3.5, 4, 4,  //
                                      3, 3.5, 4, 4});
}

TEST(Upsample, LinearOnOneAxisWithFractionalScale) {
  // floor(2 * 2.5) = 5 outputs at 0, 0.4, 0.8, 1.2, 1.6.
  Tensor y = OneNode{
      "Upsample",
      9,
      {{"mode", std::string("linear")}},
      {f32({2}, {0, 10}), f32({1}, {2.5f})},
      {1}}.run1();
  expect_near(y.to_vector<double>(), {0, 4, 8, 10, 10}, 1e-5);
}

TEST(Upsample, TrilinearOnThreeAxes) {
  // A 2x2x2 cube whose value is 4a + 2b + c, upsampled 2x: linear in each
  // axis, so the output at (i, j, k) is 4 min(i/2, 1) + 2 min(j/2, 1) + min(k/2, 1).
  std::vector<float> cube;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 2; ++c) cube.push_back(static_cast<float>(4 * a + 2 * b + c));
  Tensor y = OneNode{"Upsample",
                     8,
                     {{"mode", std::string("linear")}, {"scales", std::vector<float>{2, 2, 2}}},
                     {f32({2, 2, 2}, cube)}}
                 .run1();
  ASSERT_EQ(y.shape(), (Shape{4, 4, 4}));
  std::vector<double> want;
  auto at = [](int i) { return std::min(i / 2.0, 1.0); };
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k) want.push_back(4 * at(i) + 2 * at(j) + at(k));
  expect_near(y.to_vector<double>(), want);
}

TEST(Upsample, Int64NearestCopiesExactly) {
  int64_t big = (int64_t{1} << 60) + 1;  // not representable as a double
  Tensor y = OneNode{"Upsample", 9, {}, {i64({2}, {big, -3}), f32({1}, {2})}, {1}}.run1();
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{big, big, -3, -3}));
}

// --- Resize ------------------------------------------------------------------

TEST(Resize, Opset10NearestRoundsAsymmetricCoordinatesDown) {
  // 4 -> floor(4 * 0.75) = 3 outputs reading 0, 1.33, 2.67: indices 0, 1, 2.
  Tensor y = OneNode{"Resize", 10, {}, {f32({4}, {1, 2, 3, 4}), f32({1}, {0.75f})}, {1}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

TEST(Resize, Opset10Linear) {
  Tensor y =
      OneNode{"Resize", 10, {{"mode", std::string("linear")}}, {f32({2}, {0, 10}), f32({1}, {2})}}
          .run1();
  expect_near(y.to_vector<double>(), {0, 5, 10, 10});
}

TEST(Resize, Opset11ScalesWithEmptyRoi) {
  Tensor y =
      OneNode{"Resize", 11, {}, {f32({2}, {1, 2}), f32({0}, {}), f32({1}, {2})}, {1, 2}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 1, 2, 2}));
}

TEST(Resize, Float64Linear) {
  Tensor x = Tensor::from_vector<double>({2}, {0, 1});
  Tensor y = OneNode{"Resize",
                     13,
                     {{"mode", std::string("linear")},
                      {"coordinate_transformation_mode", std::string("align_corners")}},
                     {x, none(), Tensor::from_vector<float>({1}, {2})}}
                 .run1();
  EXPECT_EQ(y.dtype(), DType::kF64);
  // Resized length 4: outputs at 0, 1/3, 2/3, 1.
  expect_near(y.to_vector<double>(), {0, 1.0 / 3, 2.0 / 3, 1}, 1e-12);
}

TEST(Resize, Int32Nearest) {
  Tensor y = resize_sizes(Tensor::from_vector<int32_t>({3}, {7, 8, 9}), {6}, {});
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{7, 7, 8, 8, 9, 9}));
}

TEST(Resize, TfCropAndResizeExtrapolatesOutsideTheInput) {
  // roi [0.5, 1.5] over 3 points: outputs read 1, 2, 3; 3 is past the end.
  Tensor y = resize_sizes(f32({3}, {0, 10, 20}), {3},
                          {{"mode", std::string("linear")},
                           {"coordinate_transformation_mode", std::string("tf_crop_and_resize")},
                           {"extrapolation_value", -1.0f}},
                          f32({2}, {0.5f, 1.5f}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{10, 20, -1}));
}

TEST(Resize, AlignCornersToOnePointReadsTheFirst) {
  Tensor y = resize_sizes(f32({4}, {5, 6, 7, 8}), {1},
                          {{"mode", std::string("linear")},
                           {"coordinate_transformation_mode", std::string("align_corners")}});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{5}));
}

TEST(Resize, CubicExcludeOutsideRenormalisesAtTheEdge) {
  // Upsampling [0, 0, 0, 1] 2x with half_pixel: output 7 reads 3.25, whose
  // cubic window 2..5 has 4 and 5 outside. Excluded, the weights of 2 and 3
  // are renormalised; with edge padding instead, 4 and 5 repeat the 1.
  auto run = [](int64_t exclude) {
    return resize_sizes(f32({4}, {0, 0, 0, 1}), {8},
                        {{"mode", std::string("cubic")}, {"exclude_outside", exclude}})
        .to_vector<double>()
        .back();
  };
  double a = -0.75, r = 0.25;
  double w2 = ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a;
  double w3 = ((a + 2) * r - (a + 3)) * r * r + 1;
  EXPECT_NEAR(run(1), w3 / (w2 + w3), 1e-6);
  EXPECT_NEAR(run(0), 1.0 - w2, 1e-6);  // weights sum to 1; only index 2 reads a 0
}

TEST(Resize, SessionReinfersWhenScalesInputChanges) {
  OneNode node{"Resize", 13, {}, {f32({1, 2}, {1, 2}), none(), f32({2}, {1, 2})}};
  Session session(node.graph());
  TensorMap feed = node.feed();
  EXPECT_EQ(session.run(feed).at("y0").shape(), (Shape{1, 4}));
  feed["x2"] = f32({2}, {1, 3});
  Tensor y = session.run(feed).at("y0");
  EXPECT_EQ(y.shape(), (Shape{1, 6}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
}

// --- errors ------------------------------------------------------------------

TEST(ResizeErrors, ScalesAndSizesBothOrNeither) {
  Tensor x = f32({2}, {1, 2});
  expect_error(
      [&] {
        OneNode{"Resize", 13, {}, {x, none(), f32({1}, {2}), i64({1}, {4})}}.run1();
      },
      ErrorKind::kInvalidArgument, "exactly one of scales and sizes must be given, got both");
  expect_error(
      [&] {
        OneNode{"Resize", 11, {}, {x, f32({0}, {}), f32({0}, {})}}.run1();
      },
      ErrorKind::kInvalidArgument, "exactly one of scales and sizes must be given, got neither");
}

TEST(ResizeErrors, WrongNumberOfScalesOrSizes) {
  Tensor x = f32({1, 2}, {1, 2});
  expect_error(
      [&] {
        OneNode{"Resize", 13, {}, {x, none(), f32({3}, {1, 1, 2})}}.run1();
      },
      ErrorKind::kInvalidArgument, "scales has 3 values for an input of rank 2");
  expect_error([&] { resize_sizes(x, {4}, {}); }, ErrorKind::kInvalidArgument,
               "sizes has 1 values for an input of rank 2");
}

TEST(ResizeErrors, ScalesAndSizesMustBeOneDimensional) {
  Tensor x = f32({1, 2}, {1, 2});
  expect_error(
      [&] {
        OneNode{"Resize", 13, {}, {x, none(), f32({1, 2}, {1, 2})}}.run1();
      },
      ErrorKind::kInvalidArgument, "scales must be 1-D, got shape 1x2");
  expect_error(
      [&] {
        OneNode{"Resize", 13, {}, {x, none(), none(), i64({1, 2}, {1, 4})}}.run1();
      },
      ErrorKind::kInvalidArgument, "sizes must be 1-D, got shape 1x2");
}

TEST(ResizeErrors, BadScaleOrSizeValues) {
  Tensor x = f32({2}, {1, 2});
  expect_error(
      [&] {
        OneNode{"Resize", 13, {}, {x, none(), f32({1}, {-2})}}.run1();
      },
      ErrorKind::kInvalidArgument, "scale -2 on axis 0 is not positive");
  expect_error([&] { resize_sizes(x, {-1}, {}); }, ErrorKind::kInvalidArgument,
               "size -1 on axis 0 is negative");
  expect_error([&] { resize_sizes(Tensor(DType::kF32, {0}), {3}, {}); },
               ErrorKind::kInvalidArgument, "axis 0 is empty and cannot be resized to 3");
}

TEST(ResizeErrors, ScalarInput) {
  expect_error(
      [] {
        OneNode{"Resize", 13, {}, {Tensor::scalar<float>(1), none(), f32({1}, {2})}, {2}}.run1();
      },
      ErrorKind::kInvalidArgument, "cannot resize a scalar");
}

TEST(ResizeErrors, TfCropAndResizeNeedsRightSizedRoi) {
  Tensor x = f32({2}, {1, 2});
  std::map<std::string, Attribute> crop{
      {"coordinate_transformation_mode", std::string("tf_crop_and_resize")}};
  expect_error([&] { resize_sizes(x, {2}, crop); }, ErrorKind::kInvalidArgument,
               "coordinate_transformation_mode tf_crop_and_resize needs roi");
  expect_error(
      [&] {
        resize_sizes(x, {2}, crop, f32({4}, {0, 0, 1, 1}));
      },
      ErrorKind::kInvalidArgument, "roi has shape 4; an input of rank 1 needs 2 values");
}

TEST(ResizeErrors, UnsupportedAttributeValues) {
  Tensor x = f32({2}, {1, 2});
  expect_error(
      [&] {
        resize_sizes(x, {4}, {{"mode", std::string("area")}});
      },
      ErrorKind::kUnsupported, "attribute 'mode' value 'area' is not supported");
  expect_error(
      [&] {
        resize_sizes(x, {4},
                     {{"coordinate_transformation_mode", std::string("half_pixel_symmetric")}});
      },
      ErrorKind::kUnsupported,
      "attribute 'coordinate_transformation_mode' value 'half_pixel_symmetric' is not supported");
  expect_error(
      [&] {
        resize_sizes(x, {4}, {{"nearest_mode", std::string("random")}});
      },
      ErrorKind::kUnsupported, "attribute 'nearest_mode' value 'random' is not supported");
  expect_error(
      [&] {
        OneNode{"Resize", 10, {{"mode", std::string("cubic")}}, {x, f32({1}, {2})}}.run1();
      },
      ErrorKind::kUnsupported, "attribute 'mode' value 'cubic' needs opset 11 or later");
  expect_error(
      [&] {
        resize_sizes(x, {4}, {{"antialias", int64_t{1}}});
      },
      ErrorKind::kUnsupported, "attribute 'antialias' is not supported");
}

TEST(ResizeErrors, InterpolatingIntegersIsUnsupported) {
  expect_error(
      [] {
        resize_sizes(Tensor::from_vector<int32_t>({2}, {1, 2}), {4},
                     {{"mode", std::string("linear")}});
      },
      ErrorKind::kUnsupported, "input 0 has dtype int32");
}

TEST(ResizeErrors, ScalesOnlyKnownAtRunTime) {
  // 65 values is too many for a shape argument, so graft does not read the
  // input's value ahead of running.
  Tensor x = f32({2}, {1, 2});
  expect_error(
      [&] {
        OneNode{"Resize", 13, {}, {x, none(), Tensor(DType::kF32, {65})}}.run1();
      },
      ErrorKind::kUnsupported, "input 2 (scales) must be known before running");
}

TEST(UpsampleErrors, MissingScales) {
  Tensor x = f32({2}, {1, 2});
  expect_error(
      [&] {
        OneNode{"Upsample", 8, {}, {x}}.run1();
      },
      ErrorKind::kInvalidArgument, "attribute 'scales' is missing");
  expect_error(
      [&] {
        OneNode{"Upsample", 9, {}, {x, f32({0}, {})}, {1}}.run1();
      },
      ErrorKind::kInvalidArgument, "input scales is missing or empty");
}
