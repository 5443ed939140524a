// The expansion with the block middle (backend::expand_norm_depthwise_forward)
// against the expansion computed apart, in double, followed by
// norm_depthwise_forward (itself checked against the reference kernels in
// plan_test.cpp): output, batch statistics and running statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backend/backend.h"
#include "backend_test_util.h"

namespace graft {
namespace {

using test::expect_close;
using test::uniform;
using Ints = std::vector<int64_t>;

struct Case {
  const char* name;
  int64_t n, cin, ce, h, w, stride, band_rows;
  bool bias;
  float hi;  // the activations' upper bound (ReLU6; infinity: ReLU)
};

// E = we . x + be, per image and pixel, in double.
Tensor expand(const Tensor& x, const Tensor& we, const Tensor* be) {
  const int64_t n = x.dim(0), cin = x.dim(1), hw = x.dim(2) * x.dim(3), ce = we.dim(0);
  Tensor e(DType::kF32, {n, ce, x.dim(2), x.dim(3)});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < ce; ++c)
      for (int64_t p = 0; p < hw; ++p) {
        double v = be ? be->data<float>()[c] : 0.0;
        for (int64_t j = 0; j < cin; ++j)
          v += double(we.data<float>()[c * cin + j]) * x.data<float>()[(i * cin + j) * hw + p];
        e.data<float>()[(i * ce + c) * hw + p] = static_cast<float>(v);
      }
  return e;
}

TEST(ExpandNormDepthwise, ForwardMatchesTheExpansionThenTheMiddle) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const Case& k : {
           Case{"stride 1, bands of 4 rows, the last shorter", 3, 5, 20, 13, 11, 1, 4, true, 6},
           Case{"stride 2, odd size, bands of 3 rows", 3, 5, 20, 13, 11, 2, 3, false, 6},
           Case{"stride 2, one band per row, ReLU", 2, 4, 8, 10, 10, 2, 1, true, inf},
           Case{"stride 2, bands chosen for L2", 2, 16, 96, 24, 24, 2, 0, false, 6},
           Case{"stride 1, bands chosen for L2, two threads", 4, 8, 64, 24, 24, 1, 0, true, 6}}) {
    SCOPED_TRACE(k.name);
    uint32_t seed = 1;
    Tensor x = uniform({k.n, k.cin, k.h, k.w}, seed++);
    // Shifted away from zero: the statistics' shift must hold up.
    Tensor we = uniform({k.ce, k.cin, 1, 1}, seed++, -0.5f, 1.0f);
    Tensor be = uniform({k.ce}, seed++, 2.0f, 3.0f);
    Tensor scale1 = uniform({k.ce}, seed++, 0.5f, 1.5f), shift1 = uniform({k.ce}, seed++);
    Tensor wd = uniform({k.ce, 1, 3, 3}, seed++), bd = uniform({k.ce}, seed++);
    Tensor scale2 = uniform({k.ce}, seed++, 0.5f, 1.5f), shift2 = uniform({k.ce}, seed++);
    const Tensor* b = k.bias ? &be : nullptr;

    backend::NormDepthwise f;
    f.before = {1e-5, 0.9, 0.0f, k.hi};
    f.after = {1e-3, 0.8, 0.0f, k.hi};
    f.conv.op_type = "Conv";
    f.conv.name = "dw";
    f.conv.attrs = {{"group", k.ce},
                    {"kernel_shape", Ints{3, 3}},
                    {"pads", Ints{1, 1, 1, 1}},
                    {"strides", Ints{k.stride, k.stride}}};
    const backend::NormDepthwiseInputs middle{nullptr, &scale1, &shift1, &wd,
                                              &bd,     &scale2, &shift2};

    const Tensor e = expand(x, we, b);
    backend::NormDepthwiseInputs apart = middle;
    apart.x = &e;
    const int64_t oh = (k.h - 1) / k.stride + 1, ow = (k.w - 1) / k.stride + 1;
    std::vector<Tensor> running_ref, running;
    for (int r = 0; r < 4; ++r) {
      running_ref.push_back(uniform({k.ce}, seed + r, 0.5f, 1.0f));
      running.push_back(running_ref.back().clone());
    }
    Tensor y_ref(DType::kF32, {k.n, k.ce, oh, ow}), y(DType::kF32, {k.n, k.ce, oh, ow});
    std::fill_n(y.data<float>(), y.numel(), std::nanf(""));
    backend::NormDepthwiseStatistics want = backend::norm_depthwise_forward(
        f, apart, running_ref[0], running_ref[1], running_ref[2], running_ref[3], y_ref);
    backend::NormDepthwiseStatistics got = backend::expand_norm_depthwise_forward(
        f, {&x, &we, b, middle}, k.band_rows, running[0], running[1], running[2], running[3], y);

    expect_close(y, y_ref, 1e-4, "y");
    for (int r = 0; r < 4; ++r)
      expect_close(running[r], running_ref[r], 1e-5, "running statistic " + std::to_string(r));
    for (int64_t c = 0; c < k.ce; ++c) {
      ASSERT_NEAR(got.before.mean[c], want.before.mean[c], 1e-5 * std::abs(want.before.mean[c]) + 1e-6);
      ASSERT_NEAR(got.before.var[c], want.before.var[c], 1e-4 * want.before.var[c] + 1e-6);
      ASSERT_NEAR(got.after.mean[c], want.after.mean[c], 1e-4 * std::abs(want.after.mean[c]) + 1e-5);
      ASSERT_NEAR(got.after.var[c], want.after.var[c], 1e-4 * want.after.var[c] + 1e-5);
    }
  }
}

}  // namespace
}  // namespace graft
