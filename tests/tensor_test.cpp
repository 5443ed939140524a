#include <gtest/gtest.h>

#include "graft/tensor.h"

using namespace graft;

TEST(Tensor, ZeroFilledAlignedAndShaped) {
  Tensor t(DType::kF32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], 0.0f);
}

TEST(Tensor, TypedAccessChecksDtype) {
  Tensor t(DType::kI64, {4});
  EXPECT_THROW(t.data<float>(), Error);
}

TEST(Tensor, OverflowingShapeIsAnError) {
  EXPECT_THROW(Tensor(DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_THROW(shape_numel({-1, 3}), Error);
}

TEST(Tensor, SizeLimitStopsHugeAllocations) {
  size_t old = max_tensor_bytes();
  set_max_tensor_bytes(1024);
  EXPECT_THROW(Tensor(DType::kF32, {1000}), Error);
  EXPECT_NO_THROW(Tensor(DType::kF32, {100}));
  set_max_tensor_bytes(old);
}

TEST(Tensor, CastConvertsValues) {
  Tensor t = Tensor::from_vector<float>({3}, {1.5f, -2.0f, 0.0f});
  EXPECT_EQ(t.cast(DType::kI64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 0}));
  Tensor b = t.cast(DType::kBool);
  EXPECT_TRUE(b.data<bool>()[0]);
  EXPECT_FALSE(b.data<bool>()[2]);
}

TEST(Half, RoundTripsRepresentableValues) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f})
    EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  EXPECT_EQ(float_to_half(1.0f).bits, 0x3c00);
  EXPECT_EQ(float_to_half(1e6f).bits, 0x7c00);  // overflow to infinity
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(Error, CarriesContextOutermostFirst) {
  try {
    with_context("model.onnx", [] {
      with_context("node 'c' (Conv)", [] { fail(ErrorKind::kCorruption, "bad pads"); });
    });
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model.onnx: node 'c' (Conv): bad pads");
    EXPECT_EQ(e.kind(), ErrorKind::kCorruption);
  }
}
