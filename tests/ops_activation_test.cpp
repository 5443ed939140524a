// Activations, PRelu, Clip, Softmax, Dropout and Identity: the cases the ONNX
// conformance data does not cover (other dtypes, legacy opsets, edge values)
// and every error message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "graft/session.h"
#include "ops/op.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

Tensor f32(Shape shape, std::vector<float> v) { return Tensor::from_vector<float>(shape, v); }
Tensor f64(Shape shape, std::vector<double> v) { return Tensor::from_vector<double>(shape, v); }
Tensor f16(Shape shape, std::vector<float> v) { return f32(shape, v).cast(DType::kF16); }

void expect_near(const std::vector<double>& got, const std::vector<double>& want,
                 double tol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace

// --- element-wise ----------------------------------------------------------

TEST(Relu, SignedIntegersAndFloat16) {
  Tensor y = OneNode{"Relu", 14, {}, {Tensor::from_vector<int32_t>({3}, {-3, 0, 5})}}.run1();
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 5}));
  Tensor h = OneNode{"Relu", 14, {}, {f16({3}, {-1.5f, 0.5f, 2.0f})}}.run1();
  EXPECT_EQ(h.dtype(), DType::kF16);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{0, 0.5f, 2.0f}));
}

TEST(Relu, Opset1ConsumedInputsIsAccepted) {
  Tensor y = OneNode{"Relu", 1, {{"consumed_inputs", std::vector<int64_t>{0}}}, {f32({2}, {-1, 1})}}
                 .run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 1}));
}

TEST(LeakyRelu, Float64WithAlpha) {
  Tensor y = OneNode{"LeakyRelu", 16, {{"alpha", 0.5f}}, {f64({3}, {-2, 0, 3})}}.run1();
  EXPECT_EQ(y.dtype(), DType::kF64);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-1, 0, 3}));
}

TEST(HardSigmoid, Float64WithAlphaAndBeta) {
  Tensor y =
      OneNode{"HardSigmoid", 6, {{"alpha", 0.25f}, {"beta", 0.25f}}, {f64({4}, {-5, 0, 1, 5})}}
          .run1();
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{0, 0.25, 0.5, 1}));
}

TEST(HardSwish, Float64) {
  // x * clamp(x / 6 + 1/2, 0, 1)
  Tensor y = OneNode{"HardSwish", 14, {}, {f64({4}, {-4, 0, 1, 3})}}.run1();
  expect_near(y.to_vector<double>(), {0, 0, 1.0 * (1.0 / 6 + 0.5), 3}, 1e-12);
}

TEST(Sigmoid, ExtremeInputsGiveZeroAndOneNotNan) {
  Tensor y = OneNode{"Sigmoid", 13, {}, {f32({3}, {-1000, 0, 1000})}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 0.5f, 1}));
}

TEST(Tanh, Float16) {
  Tensor y = OneNode{"Tanh", 13, {}, {f16({2}, {0, 1})}}.run1();
  expect_near(y.to_vector<double>(), {0, std::tanh(1.0)}, 1e-3);
}

TEST(ExpLogSqrt, Float64AndEdgeValues) {
  expect_near(OneNode{"Exp", 13, {}, {f64({2}, {0, 1})}}.run1().to_vector<double>(),
              {1, std::exp(1.0)});
  std::vector<double> log = OneNode{"Log", 13, {}, {f64({2}, {0, 1})}}.run1().to_vector<double>();
  EXPECT_EQ(log[0], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(log[1], 0);
  std::vector<double> sq = OneNode{"Sqrt", 13, {}, {f64({2}, {-1, 9})}}.run1().to_vector<double>();
  EXPECT_TRUE(std::isnan(sq[0]));
  EXPECT_EQ(sq[1], 3);
}

TEST(Erf, KnownValues) {
  Tensor y = OneNode{"Erf", 13, {}, {f64({3}, {-1, 0, 1})}}.run1();
  expect_near(y.to_vector<double>(), {-0.8427007929497149, 0, 0.8427007929497149}, 1e-12);
}

TEST(Unary, IntegerInputIsUnsupported) {
  expect_error(
      [] {
        OneNode{"Sigmoid", 13, {}, {Tensor::from_vector<int64_t>({1}, {1})}}.run();
      },
      ErrorKind::kUnsupported, "input 0 has dtype int64");
}

// --- PRelu -----------------------------------------------------------------

TEST(PRelu, Opset6SlopePerChannelAppliesAlongAxis1) {
  // x is N=1, C=2, W=2; slope [2] is one value per channel, not per column.
  Tensor y =
      OneNode{"PRelu", 6, {}, {f32({1, 2, 2}, {-1, -2, -3, 4}), f32({2}, {0.5f, 2})}, {1}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-0.5f, -1, -6, 4}));
}

TEST(PRelu, Opset16SlopeBroadcastsNumpyStyle) {
  // The same slope [2] now applies along the last axis.
  Tensor y =
      OneNode{"PRelu", 16, {}, {f32({1, 2, 2}, {-1, -2, -3, 4}), f32({2}, {0.5f, 2})}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-0.5f, -4, -1.5f, 4}));
}

TEST(PRelu, Int64) {
  Tensor y =
      OneNode{"PRelu",
              16,
              {},
              {Tensor::from_vector<int64_t>({2}, {-3, 3}), Tensor::from_vector<int64_t>({1}, {2})}}
          .run1();
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{-6, 3}));
}

TEST(PRelu, SlopeThatWouldGrowTheInputIsAnError) {
  expect_error(
      [] {
        OneNode{"PRelu", 16, {}, {f32({2}, {1, 2}), f32({2, 2}, {1, 1, 1, 1})}}.run();
      },
      ErrorKind::kInvalidArgument, "slope of shape 2x2 does not broadcast to the input shape 2");
}

TEST(PRelu, SlopeDtypeMustMatch) {
  expect_error(
      [] {
        OneNode{"PRelu", 16, {}, {f32({2}, {1, 2}), f64({1}, {1})}}.run();
      },
      ErrorKind::kInvalidArgument, "slope has dtype float64, the input float32");
}

// --- Clip ------------------------------------------------------------------

TEST(Clip, Opset6AttributesOnlyMin) {
  Tensor y = OneNode{"Clip", 6, {{"min", 0.0f}}, {f32({3}, {-1, 0.5f, 1e30f})}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 0.5f, 1e30f}));
}

TEST(Clip, Int64WithMinAboveMaxGivesMax) {
  auto i64 = [](std::vector<int64_t> v, Shape s) { return Tensor::from_vector<int64_t>(s, v); };
  Tensor y = OneNode{"Clip", 13, {}, {i64({-5, 0, 5}, {3}), i64({2}, {}), i64({1}, {})}}.run1();
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1}));
}

TEST(Clip, Int32OnlyMaxAsConstant) {
  Tensor x = Tensor::from_vector<int32_t>({3}, {std::numeric_limits<int32_t>::min(), 0, 7});
  Tensor y = OneNode{"Clip", 13, {}, {x, Tensor(), Tensor::scalar<int32_t>(3)}, {2}}.run1();
  EXPECT_EQ(y.to_vector<int32_t>(),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 0, 3}));
}

TEST(Clip, Float16Bounds) {
  Tensor y =
      OneNode{"Clip", 13, {}, {f16({3}, {-2, 0.25f, 2}), f16({}, {-1}), f16({}, {1})}}.run1();
  EXPECT_EQ(y.dtype(), DType::kF16);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-1, 0.25f, 1}));
}

TEST(Clip, BoundMustBeOneValue) {
  expect_error(
      [] {
        OneNode{"Clip", 13, {}, {f32({2}, {1, 2}), f32({2}, {0, 0})}}.run();
      },
      ErrorKind::kInvalidArgument, "min must be a single value, got shape 2");
}

TEST(Clip, BoundDtypeMustMatch) {
  expect_error(
      [] {
        OneNode{"Clip", 13, {}, {f32({2}, {1, 2}), Tensor(), f64({}, {0})}}.run();
      },
      ErrorKind::kInvalidArgument, "max has dtype float64, the input float32");
}

TEST(Clip, BoundInputsBeforeOpset11AreAnError) {
  expect_error(
      [] {
        OneNode{"Clip", 6, {}, {f32({2}, {1, 2}), f32({}, {0})}}.run();
      },
      ErrorKind::kInvalidArgument, "takes min and max as inputs only from opset 11");
}

TEST(Clip, IntegersBeforeOpset12AreUnsupported) {
  expect_error(
      [] {
        OneNode{"Clip", 11, {}, {Tensor::from_vector<int64_t>({1}, {1})}}.run();
      },
      ErrorKind::kUnsupported, "input 0 has dtype int64");
}

// --- Softmax and LogSoftmax ------------------------------------------------

TEST(Softmax, Opset11CoercesTo2DAtAxis) {
  // Shape 1x2x2 at axis 1: one row of four values, normalised together.
  Tensor y = OneNode{"Softmax", 11, {}, {f64({1, 2, 2}, {0, 0, 0, 0})}}.run1();
  expect_near(y.to_vector<double>(), {0.25, 0.25, 0.25, 0.25});
}

TEST(Softmax, Opset13NormalisesOneAxis) {
  // The same input at axis 1 from opset 13: pairs (x[0][0][j], x[0][1][j]).
  Tensor y =
      OneNode{"Softmax", 13, {{"axis", int64_t{1}}}, {f64({1, 2, 2}, {0, 0, std::log(3.0), 0})}}
          .run1();
  expect_near(y.to_vector<double>(), {0.25, 0.5, 0.75, 0.5});
}

TEST(Softmax, Float16) {
  Tensor y = OneNode{"Softmax", 13, {}, {f16({2}, {1, 1})}}.run1();
  EXPECT_EQ(y.dtype(), DType::kF16);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
}

TEST(LogSoftmax, LargeFloat64InputsStayFinite) {
  Tensor y = OneNode{"LogSoftmax", 13, {}, {f64({2}, {1000, 1000})}}.run1();
  expect_near(y.to_vector<double>(), {-std::log(2.0), -std::log(2.0)}, 1e-12);
}

TEST(Softmax, AxisOutOfRange) {
  expect_error(
      [] {
        OneNode{"Softmax", 13, {{"axis", int64_t{2}}}, {f32({2, 2}, {0, 0, 0, 0})}}.run();
      },
      ErrorKind::kInvalidArgument, "axis 2 is out of range for rank 2");
}

// --- Dropout and Identity --------------------------------------------------

TEST(Dropout, Opset7MaskHasTheInputDtype) {
  std::vector<Tensor> y = OneNode{"Dropout", 7, {{"ratio", 0.3f}}, {f32({2}, {1, 2})}, {}, 2}.run();
  EXPECT_EQ(y[0].to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(y[1].dtype(), DType::kF32);
  EXPECT_EQ(y[1].to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(Dropout, Opset6IsTestAttributeIsAccepted) {
  Tensor y = OneNode{"Dropout", 6, {{"is_test", int64_t{0}}}, {f64({2}, {1, 2})}}.run1();
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1, 2}));
}

TEST(Dropout, Opset12TrainingModeFalseIsInference) {
  std::vector<Tensor> y = OneNode{"Dropout",
                                  12,
                                  {{"seed", int64_t{1}}},
                                  {f32({2}, {1, 2}), f32({}, {0.9f}), Tensor::scalar<bool>(false)},
                                  {1, 2},
                                  2}
                              .run();
  EXPECT_EQ(y[0].to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(y[1].dtype(), DType::kBool);
  EXPECT_EQ(y[1].to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
}

TEST(Dropout, TrainingModeWithRatioZeroDropsNothing) {
  Tensor y = OneNode{
      "Dropout",
      13,
      {},
      {f32({2}, {1, 2}), f32({}, {0}), Tensor::scalar<bool>(true)},
      {1, 2}}.run1();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2}));
}

TEST(Dropout, KnownTrainingModeIsUnsupported) {
  expect_error(
      [] {
        OneNode{"Dropout", 13, {}, {f32({2}, {1, 2}), Tensor(), Tensor::scalar<bool>(true)}, {2}}
            .run();
      },
      ErrorKind::kUnsupported, "Dropout in training mode");
}

TEST(Dropout, TrainingModeFedAtRunTimeIsUnsupported) {
  // training_mode is a graph input: shapes do not depend on it, so it is
  // not known ahead, and Dropout sees it true only when it runs.
  expect_error(
      [] {
        OneNode{"Dropout", 13, {}, {f32({2}, {1, 2}), f32({}, {0.5f}), Tensor::scalar<bool>(true)}}
            .run();
      },
      ErrorKind::kUnsupported, "Dropout in training mode");
}

// Runs Dropout's kernel as the executor does for a node it trains.
std::vector<Tensor> dropout_training(const Tensor& x, float ratio, uint64_t seed) {
  Node n{"d", "Dropout", {"x"}, {"y", "mask"}, {{"ratio", ratio}}};
  std::vector<Tensor> out{Tensor(x.dtype(), x.shape()), Tensor(DType::kBool, x.shape())};
  ops::KernelContext c{n, 11, {&x}, {&out[0], &out[1]}, true, seed};
  ops::run_compute(c);
  return out;
}

TEST(Dropout, ExecutorTrainingDropsAndScalesReproducibly) {
  Tensor x = f64({1000}, std::vector<double>(1000, 2.0));
  std::vector<Tensor> a = dropout_training(x, 0.25f, 7);
  std::vector<double> y = a[0].to_vector<double>();
  std::vector<int64_t> mask = a[1].to_vector<int64_t>();
  int kept = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_EQ(y[i], mask[i] ? 2.0 / 0.75 : 0.0) << i;
    kept += static_cast<int>(mask[i]);
  }
  EXPECT_NEAR(kept, 750, 60);  // about 1 - ratio of the elements survive
  EXPECT_EQ(dropout_training(x, 0.25f, 7)[1].to_vector<int64_t>(), mask);
  EXPECT_NE(dropout_training(x, 0.25f, 8)[1].to_vector<int64_t>(), mask);
}

TEST(Dropout, ExecutorTrainingFloat16) {
  std::vector<Tensor> a = dropout_training(f16({64}, std::vector<float>(64, 1.0f)), 0.5f, 1);
  EXPECT_EQ(a[0].dtype(), DType::kF16);
  std::vector<float> y = a[0].to_vector<float>();
  std::vector<int64_t> mask = a[1].to_vector<int64_t>();
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], mask[i] ? 2.0f : 0.0f);
}

TEST(Dropout, RatioOutsideRange) {
  expect_error(
      [] {
        OneNode{"Dropout", 10, {{"ratio", 1.0f}}, {f32({2}, {1, 2})}}.run();
      },
      ErrorKind::kInvalidArgument, "ratio 1 is outside [0, 1)");
}

TEST(Dropout, RatioMustBeOneValue) {
  expect_error(
      [] {
        OneNode{"Dropout", 13, {}, {f32({2}, {1, 2}), f32({2}, {0, 0})}}.run();
      },
      ErrorKind::kInvalidArgument, "ratio must be a single value");
}

TEST(Dropout, TrainingModeMustBeBool) {
  expect_error(
      [] {
        OneNode{"Dropout", 13, {}, {f32({2}, {1, 2}), Tensor(), f32({}, {1})}}.run();
      },
      ErrorKind::kInvalidArgument, "training_mode must be a single bool");
}

TEST(Dropout, RatioInputBeforeOpset12IsAnError) {
  expect_error(
      [] {
        OneNode{"Dropout", 11, {}, {f32({2}, {1, 2}), f32({}, {0.5f})}}.run();
      },
      ErrorKind::kInvalidArgument, "takes ratio and training_mode as inputs only from opset 12");
}

TEST(Identity, AnyDtype) {
  Tensor b(DType::kBool, {2});
  b.data<bool>()[1] = true;
  Tensor y = OneNode{"Identity", 13, {}, {b}}.run1();
  EXPECT_EQ(y.dtype(), DType::kBool);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  Tensor i = OneNode{"Identity", 13, {}, {Tensor::from_vector<int64_t>({2}, {7, -7})}}.run1();
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{7, -7}));
}
