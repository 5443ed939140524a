// Conv and ConvTranspose: random cases against a direct, independent
// implementation of the definition (every rank, groups, dilations, strides,
// asymmetric pads, output padding), hand-checked auto_pad cases the ONNX
// conformance data does not cover, and every error message.
#include <gtest/gtest.h>

#include <algorithm>

#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

// Deterministic values in [-1, 1).
Tensor random_tensor(Shape shape, uint32_t seed) {
  Tensor t(DType::kF32, std::move(shape));
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data<float>()[i] = static_cast<float>(s >> 8) / static_cast<float>(1 << 23) - 1.0f;
  }
  return t;
}

// Advances a multi-index over `shape` in row-major order; false after the last.
bool next_index(std::vector<int64_t>& idx, const Shape& shape) {
  for (int a = static_cast<int>(shape.size()) - 1; a >= 0; --a) {
    if (++idx[a] < shape[a]) return true;
    idx[a] = 0;
  }
  return false;
}

int64_t flat(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t f = 0;
  for (size_t a = 0; a < shape.size(); ++a) f = f * shape[a] + idx[a];
  return f;
}

// A convolution's parameters, all explicit, for both references.
struct ConvCase {
  Shape x, w;  // x: N x C x spatial; w: Conv M x C/g x k, ConvTranspose C x M/g x k
  int64_t group = 1;
  Shape strides, dilations, pads, output_padding;  // empty: defaults
  bool bias = true;

  size_t rank() const { return x.size() - 2; }
  int64_t stride(size_t i) const { return strides.empty() ? 1 : strides[i]; }
  int64_t dilation(size_t i) const { return dilations.empty() ? 1 : dilations[i]; }
  int64_t pad(size_t i) const { return pads.empty() ? 0 : pads[i]; }
  int64_t extent(size_t i) const { return (w[2 + i] - 1) * dilation(i) + 1; }

  std::map<std::string, Attribute> attrs() const {
    std::map<std::string, Attribute> a = {{"group", group}};
    if (!strides.empty()) a["strides"] = strides;
    if (!dilations.empty()) a["dilations"] = dilations;
    if (!pads.empty()) a["pads"] = pads;
    if (!output_padding.empty()) a["output_padding"] = output_padding;
    return a;
  }
};

// y[n, m, o] = b[m] + sum over c, k of x[n, g*C/g + c, o*s + k*d - p] * w[m, c, k],
// one output element at a time, straight from the definition.
Tensor conv_reference(const ConvCase& cc, const Tensor& x, const Tensor& w, const Tensor& b) {
  size_t r = cc.rank();
  int64_t M = cc.w[0], Cg = cc.w[1], Mg = M / cc.group;
  Shape out = {cc.x[0], M};
  for (size_t i = 0; i < r; ++i)
    out.push_back((cc.x[2 + i] + cc.pad(i) + cc.pad(r + i) - cc.extent(i)) / cc.stride(i) + 1);
  Tensor y(DType::kF32, out);
  std::vector<int64_t> o(out.size(), 0);
  Shape wk(cc.w.begin() + 2, cc.w.end());
  do {
    double sum = cc.bias ? b.data<float>()[o[1]] : 0.0;
    int64_t g = o[1] / Mg;
    for (int64_t c = 0; c < Cg; ++c) {
      std::vector<int64_t> k(r, 0);
      do {
        std::vector<int64_t> xi = {o[0], g * Cg + c};
        bool inside = true;
        for (size_t i = 0; i < r; ++i) {
          int64_t pos = o[2 + i] * cc.stride(i) + k[i] * cc.dilation(i) - cc.pad(i);
          inside = inside && pos >= 0 && pos < cc.x[2 + i];
          xi.push_back(pos);
        }
        if (!inside) continue;
        std::vector<int64_t> wi = {o[1], c};
        wi.insert(wi.end(), k.begin(), k.end());
        sum += double(x.data<float>()[flat(xi, cc.x)]) * w.data<float>()[flat(wi, cc.w)];
      } while (next_index(k, wk));
    }
    y.data<float>()[flat(o, out)] = static_cast<float>(sum);
  } while (next_index(o, out));
  return y;
}

// Every input element scatters into y[n, g*M/g + m, i*s + k*d - p].
Tensor conv_transpose_reference(const ConvCase& cc, const Tensor& x, const Tensor& w,
                                const Tensor& b) {
  size_t r = cc.rank();
  int64_t Mg = cc.w[1], M = Mg * cc.group, Cg = cc.x[1] / cc.group;
  Shape out = {cc.x[0], M};
  for (size_t i = 0; i < r; ++i) {
    int64_t op = cc.output_padding.empty() ? 0 : cc.output_padding[i];
    out.push_back(cc.stride(i) * (cc.x[2 + i] - 1) + op + cc.extent(i) - cc.pad(i) - cc.pad(r + i));
  }
  std::vector<double> acc(shape_numel(out), 0.0);
  std::vector<int64_t> xi(cc.x.size(), 0);
  Shape wk(cc.w.begin() + 2, cc.w.end());
  do {
    int64_t g = xi[1] / Cg;
    for (int64_t m = 0; m < Mg; ++m) {
      std::vector<int64_t> k(r, 0);
      do {
        std::vector<int64_t> oi = {xi[0], g * Mg + m};
        bool inside = true;
        for (size_t i = 0; i < r; ++i) {
          int64_t pos = xi[2 + i] * cc.stride(i) + k[i] * cc.dilation(i) - cc.pad(i);
          inside = inside && pos >= 0 && pos < out[2 + i];
          oi.push_back(pos);
        }
        if (!inside) continue;
        std::vector<int64_t> wi = {xi[1], m};
        wi.insert(wi.end(), k.begin(), k.end());
        acc[flat(oi, out)] +=
            double(x.data<float>()[flat(xi, cc.x)]) * w.data<float>()[flat(wi, cc.w)];
      } while (next_index(k, wk));
    }
  } while (next_index(xi, cc.x));
  Tensor y(DType::kF32, out);
  std::vector<int64_t> o(out.size(), 0);
  do {
    y.data<float>()[flat(o, out)] =
        static_cast<float>(acc[flat(o, out)] + (cc.bias ? b.data<float>()[o[1]] : 0.0));
  } while (next_index(o, out));
  return y;
}

void expect_close(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], w[i], 1e-4 + 1e-4 * std::abs(w[i])) << i;
}

void check_against_reference(const char* op, const ConvCase& cc, uint32_t seed) {
  Tensor x = random_tensor(cc.x, seed), w = random_tensor(cc.w, seed + 1);
  int64_t channels = std::string(op) == "Conv" ? cc.w[0] : cc.w[1] * cc.group;
  Tensor b = cc.bias ? random_tensor({channels}, seed + 2) : Tensor();
  Tensor want = std::string(op) == "Conv" ? conv_reference(cc, x, w, b)
                                          : conv_transpose_reference(cc, x, w, b);
  OneNode n{op, 13, cc.attrs(), {x, w, b}, {1, 2}};
  expect_close(n.run1(), want);
}

}  // namespace

TEST(Conv, MatchesDirectDefinition) {
  std::vector<ConvCase> cases = {
      {{2, 3, 11}, {4, 3, 3}, 1, {2}, {2}, {1, 3}, {}, true},  // 1-D, asymmetric pads
      {{1, 4, 9, 8}, {6, 2, 3, 2}, 2, {2, 1}, {1, 3}, {0, 2, 1, 1}, {}, true},  // groups, dilation
      {{2, 6, 7, 7}, {12, 1, 3, 3}, 6, {2, 2}, {}, {1, 1, 1, 1}, {}, true},     // depthwise x2
      {{1, 2, 5, 6, 7},
       {3, 2, 2, 3, 2},
       1,
       {1, 2, 3},
       {2, 1, 1},
       {1, 0, 2, 0, 1, 1},
       {},
       true},                                                           // 3-D
      {{1, 3, 5, 5}, {2, 3, 1, 1}, 1, {3, 3}, {}, {}, {}, false},       // 1x1, stride 3, no bias
      {{1, 1, 4, 4}, {1, 1, 5, 5}, 1, {}, {}, {2, 2, 2, 2}, {}, true},  // kernel larger than x
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    check_against_reference("Conv", cases[i], static_cast<uint32_t>(i));
  }
}

TEST(ConvTranspose, MatchesDirectDefinition) {
  std::vector<ConvCase> cases = {
      {{2, 3, 5}, {3, 2, 3}, 1, {2}, {1}, {1, 0}, {1}, true},                       // 1-D
      {{1, 4, 4, 3}, {4, 3, 3, 2}, 2, {2, 3}, {2, 1}, {1, 0, 0, 2}, {1, 2}, true},  // groups
      {{1, 4, 3, 3}, {4, 1, 3, 3}, 4, {2, 2}, {}, {1, 1, 1, 1}, {1, 1}, true},      // depthwise
      {{1, 2, 2, 3, 2}, {2, 2, 2, 2, 3}, 1, {2, 1, 2}, {1, 2, 1}, {}, {}, false},   // 3-D
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    check_against_reference("ConvTranspose", cases[i], static_cast<uint32_t>(10 + i));
  }
}

// x = 1 2 3 4 with kernel [1 10]: SAME pads one zero, at the end for
// SAME_UPPER (windows 1,2 2,3 3,4 4,0) and at the start for SAME_LOWER.
TEST(Conv, SamePaddingPutsTheOddUnitAtTheRightEnd) {
  Tensor x = Tensor::from_vector<float>({1, 1, 4}, {1, 2, 3, 4});
  Tensor w = Tensor::from_vector<float>({1, 1, 2}, {1, 10});
  OneNode upper{"Conv", 11, {{"auto_pad", std::string("SAME_UPPER")}}, {x, w}};
  EXPECT_EQ(upper.run1().to_vector<float>(), (std::vector<float>{21, 32, 43, 4}));
  OneNode lower{"Conv", 11, {{"auto_pad", std::string("SAME_LOWER")}}, {x, w}};
  EXPECT_EQ(lower.run1().to_vector<float>(), (std::vector<float>{10, 21, 32, 43}));
  OneNode valid{"Conv", 11, {{"auto_pad", std::string("VALID")}, {"pads", Shape{5, 5}}}, {x, w}};
  EXPECT_EQ(valid.run1().to_vector<float>(), (std::vector<float>{21, 32, 43}));
}

// Stride 2 over 5 values, kernel 3: out = ceil(5 / 2) = 3, total pad 2.
TEST(Conv, SamePaddingWithStride) {
  Tensor x = Tensor::from_vector<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  Tensor w = Tensor::from_vector<float>({1, 1, 3}, {1, 1, 1});
  OneNode n{"Conv", 11, {{"auto_pad", std::string("SAME_UPPER")}, {"strides", Shape{2}}}, {x, w}};
  EXPECT_EQ(n.run1().to_vector<float>(), (std::vector<float>{3, 9, 9}));
}

TEST(Conv, DoubleAndFoldedAheadWhenAllInputsAreConstant) {
  Tensor x = Tensor::from_vector<double>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor w = Tensor::from_vector<double>({2, 1, 1, 1}, {1, -1});
  Tensor b = Tensor::from_vector<double>({2}, {0.5, 0});
  OneNode n{"Conv", 13, {{"kernel_shape", Shape{1, 1}}}, {x, w, b}, {0, 1, 2}};
  Tensor y = n.run1();
  EXPECT_EQ(y.dtype(), DType::kF64);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1.5, 2.5, 3.5, 4.5, -1, -2, -3, -4}));
}

// Input 1 2 3, kernel [1 1 1], stride 2: full output 1 1 3 2 5 3 3 (length 7);
// SAME wants 3 * 2 = 6, so one unit is cut, at the start for SAME_LOWER.
TEST(ConvTranspose, SamePaddingAndOutputShape) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3}, {1, 2, 3});
  Tensor w = Tensor::from_vector<float>({1, 1, 3}, {1, 1, 1});
  auto run = [&](std::map<std::string, Attribute> a) {
    a["strides"] = Shape{2};
    return OneNode{"ConvTranspose", 11, a, {x, w}}.run1().to_vector<float>();
  };
  EXPECT_EQ(run({}), (std::vector<float>{1, 1, 3, 2, 5, 3, 3}));
  EXPECT_EQ(run({{"auto_pad", std::string("SAME_UPPER")}}), (std::vector<float>{1, 1, 3, 2, 5, 3}));
  EXPECT_EQ(run({{"auto_pad", std::string("SAME_LOWER")}}), (std::vector<float>{1, 3, 2, 5, 3, 3}));
  // output_shape with NOTSET cuts like SAME_LOWER; a larger one adds zeros at the end.
  EXPECT_EQ(run({{"output_shape", Shape{5}}}), (std::vector<float>{1, 3, 2, 5, 3}));
  EXPECT_EQ(run({{"output_shape", Shape{1, 1, 8}}}), (std::vector<float>{1, 1, 3, 2, 5, 3, 3, 0}));
}

TEST(Conv, Errors) {
  Tensor x = random_tensor({1, 4, 5, 5}, 1);
  Tensor w = random_tensor({2, 4, 3, 3}, 2);
  Tensor b = random_tensor({2}, 3);
  auto conv = [&](std::map<std::string, Attribute> a, std::vector<Tensor> in = {}) {
    return [a, in, x, w] {
      OneNode{"Conv", 13, a, in.empty() ? std::vector<Tensor>{x, w} : in}.run1();
    };
  };
  using K = ErrorKind;
  expect_error(conv({{"auto_pad", std::string("SAME")}}), K::kUnsupported,
               "auto_pad 'SAME' is not supported");
  expect_error(conv({{"strides", Shape{1}}}), K::kInvalidArgument,
               "attribute 'strides' has 1 values; the input has 2 spatial axes");
  expect_error(conv({{"pads", Shape{1, 1}}}), K::kInvalidArgument,
               "attribute 'pads' has 2 values; 2 spatial axes need 4");
  expect_error(conv({{"strides", Shape{0, 1}}}), K::kInvalidArgument,
               "stride 0 on spatial axis 0 is not positive");
  expect_error(conv({{"dilations", Shape{1, -1}}}), K::kInvalidArgument,
               "dilation -1 on spatial axis 1 is not positive");
  expect_error(conv({{"pads", Shape{0, -1, 0, 0}}}), K::kInvalidArgument,
               "negative padding on spatial axis 1");
  expect_error(
      conv({{"dilations", Shape{3, 1}}}), K::kInvalidArgument,
      "window of 7 (kernel 3, dilation 3) is larger than the padded input 5 on spatial axis 0");
  expect_error(conv({{"kernel_shape", Shape{3, 2}}}), K::kInvalidArgument,
               "kernel_shape 3x2 does not match the weight's shape 2x4x3x3");
  expect_error(conv({{"group", int64_t{0}}}), K::kInvalidArgument, "group 0 is not positive");
  expect_error(conv({{"group", int64_t{2}}}), K::kInvalidArgument,
               "weight 2x4x3x3 takes 4 channels per group; the input has 4 channels in 2 groups");
  expect_error(conv({{"group", int64_t{4}}}, {x, random_tensor({2, 1, 3, 3}, 4)}),
               K::kInvalidArgument, "2 output channels do not divide into 4 groups");
  expect_error(conv({}, {x.reshaped({4, 25}), w}), K::kInvalidArgument,
               "input has shape 4x25; Conv needs N x C x D1 x ... (at least one spatial axis)");
  expect_error(conv({}, {x, w.reshaped({2, 4, 9})}), K::kInvalidArgument,
               "weight has shape 2x4x9, which does not match the input's rank 4");
  expect_error(conv({}, {x, w, random_tensor({3}, 5)}), K::kInvalidArgument,
               "bias has shape 3; expected 2 (one value per output channel)");
  expect_error(conv({}, {x, w, b.cast(DType::kF64)}), K::kInvalidArgument,
               "bias dtype float64 differs from input dtype float32");
  expect_error(conv({}, {x, w.cast(DType::kF64)}), K::kInvalidArgument,
               "weight dtype float64 differs from input dtype float32");
  expect_error(conv({}, {x.cast(DType::kI64), w}), K::kUnsupported, "input 0 has dtype int64");
  Tensor x4 = random_tensor({1, 1, 2, 2, 2, 2}, 6), w4 = random_tensor({1, 1, 1, 1, 1, 1}, 7);
  expect_error(conv({}, {x4, w4}), K::kUnsupported, "4 spatial axes (graft supports 1 to 3)");
}

TEST(ConvTranspose, Errors) {
  Tensor x = random_tensor({1, 4, 3, 3}, 1);
  Tensor w = random_tensor({4, 2, 3, 3}, 2);
  auto deconv = [&](std::map<std::string, Attribute> a, std::vector<Tensor> in = {}) {
    return [a, in, x, w] {
      OneNode{"ConvTranspose", 13, a, in.empty() ? std::vector<Tensor>{x, w} : in}.run1();
    };
  };
  using K = ErrorKind;
  expect_error(deconv({{"output_padding", Shape{0, -1}}}), K::kInvalidArgument,
               "output_padding -1 on spatial axis 1 is negative");
  expect_error(deconv({{"output_padding", Shape{1}}}), K::kInvalidArgument,
               "attribute 'output_padding' has 1 values; the input has 2 spatial axes");
  expect_error(deconv({{"output_shape", Shape{1, 2, 3}}}), K::kInvalidArgument,
               "attribute 'output_shape' has 3 values; the input has 2 spatial axes");
  expect_error(deconv({{"pads", Shape{4, 0, 4, 0}}}), K::kInvalidArgument,
               "pads 4 and 4 exceed the output size 5 on spatial axis 0");
  expect_error(deconv({}, {x, random_tensor({3, 2, 3, 3}, 3)}), K::kInvalidArgument,
               "weight 3x2x3x3 takes 3 input channels; the input has 4");
  expect_error(deconv({{"group", int64_t{3}}}, {random_tensor({1, 4, 3, 3}, 4), w}),
               K::kInvalidArgument, "4 input channels do not divide into 3 groups");
  expect_error(deconv({{"group", int64_t{2}}}, {x, w, random_tensor({2}, 5)}), K::kInvalidArgument,
               "bias has shape 2; expected 4 (one value per output channel)");
}
