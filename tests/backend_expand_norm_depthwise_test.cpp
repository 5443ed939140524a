// The expansion with the block middle (backend::expand_norm_depthwise_*)
// against the expansion computed apart, in double, with norm_depthwise_forward
// and norm_depthwise_backward (themselves checked against the reference
// kernels in plan_test.cpp): output, batch and running statistics, and every
// gradient.
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

// The expansion's gradients from E's (de), in double.
void expansion_gradients(const Tensor& x, const Tensor& we, const Tensor& de, Tensor& dx,
                         Tensor& dwe, Tensor& dbe) {
  const int64_t n = x.dim(0), cin = x.dim(1), hw = x.dim(2) * x.dim(3), ce = we.dim(0);
  for (int64_t c = 0; c < ce; ++c) {
    double db = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < hw; ++p) db += de.data<float>()[(i * ce + c) * hw + p];
    dbe.data<float>()[c] = static_cast<float>(db);
    for (int64_t j = 0; j < cin; ++j) {
      double dw = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < hw; ++p)
          dw += double(de.data<float>()[(i * ce + c) * hw + p]) * x.data<float>()[(i * cin + j) * hw + p];
      dwe.data<float>()[c * cin + j] = static_cast<float>(dw);
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < cin; ++j)
      for (int64_t p = 0; p < hw; ++p) {
        double v = 0;
        for (int64_t c = 0; c < ce; ++c)
          v += double(we.data<float>()[c * cin + j]) * de.data<float>()[(i * ce + c) * hw + p];
        dx.data<float>()[(i * cin + j) * hw + p] = static_cast<float>(v);
      }
}

Tensor poisoned(Shape shape) {
  Tensor t(DType::kF32, std::move(shape));
  std::fill_n(t.data<float>(), t.numel(), std::nanf(""));
  return t;
}

TEST(ExpandNormDepthwise, MatchesTheExpansionThenTheMiddle) {
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
    Tensor y_ref(DType::kF32, {k.n, k.ce, oh, ow});
    Tensor y = poisoned({k.n, k.ce, oh, ow}), d = poisoned({k.n, k.ce, oh, ow});
    backend::NormDepthwiseStatistics want = backend::norm_depthwise_forward(
        f, apart, running_ref[0], running_ref[1], running_ref[2], running_ref[3], y_ref);
    const backend::ExpandNormDepthwiseInputs in{&x, &we, b, middle};
    backend::NormDepthwiseStatistics got = backend::expand_norm_depthwise_forward(
        f, in, k.band_rows, running[0], running[1], running[2], running[3], d, y);

    expect_close(y, y_ref, 1e-4, "y");
    for (int r = 0; r < 4; ++r)
      expect_close(running[r], running_ref[r], 1e-5, "running statistic " + std::to_string(r));
    for (int64_t c = 0; c < k.ce; ++c) {
      ASSERT_NEAR(got.before.mean[c], want.before.mean[c], 1e-5 * std::abs(want.before.mean[c]) + 1e-6);
      ASSERT_NEAR(got.before.var[c], want.before.var[c], 1e-4 * want.before.var[c] + 1e-6);
      ASSERT_NEAR(got.after.mean[c], want.after.mean[c], 1e-4 * std::abs(want.after.mean[c]) + 1e-5);
      ASSERT_NEAR(got.after.var[c], want.after.var[c], 1e-4 * want.after.var[c] + 1e-5);
    }

    // Backward: every gradient, the expansion's from E's gradient.
    const Tensor dy = uniform({k.n, k.ce, oh, ow}, seed + 7);
    const Shape cs{k.ce}, ws{k.ce, 1, 3, 3}, xs{k.n, k.cin, k.h, k.w}, wes{k.ce, k.cin, 1, 1};
    Tensor de(DType::kF32, e.shape());
    std::vector<Tensor> ref{Tensor(DType::kF32, xs), Tensor(DType::kF32, wes), Tensor(DType::kF32, cs),
                            Tensor(DType::kF32, cs), Tensor(DType::kF32, cs), Tensor(DType::kF32, ws),
                            Tensor(DType::kF32, cs), Tensor(DType::kF32, cs), Tensor(DType::kF32, cs)};
    std::vector<Tensor> fast{poisoned(xs), poisoned(wes), poisoned(cs), poisoned(cs), poisoned(cs),
                             poisoned(ws), poisoned(cs), poisoned(cs), poisoned(cs)};
    backend::norm_depthwise_backward(
        f, want.before, want.after, apart, dy,
        {&de, &ref[3], &ref[4], &ref[5], &ref[6], &ref[7], &ref[8]});
    expansion_gradients(x, we, de, ref[0], ref[1], ref[2]);
    backend::expand_norm_depthwise_backward(
        f, got.before, got.after, in, d, dy, k.band_rows,
        {&fast[0], &fast[1], b ? &fast[2] : nullptr,
         {nullptr, &fast[3], &fast[4], &fast[5], &fast[6], &fast[7], &fast[8]}});
    const char* names[] = {"dx", "dwe", "dbe", "dscale1", "dshift1", "dwd", "dbd", "dscale2", "dshift2"};
    for (int g = 0; g < 9; ++g)
      if (g != 2 || b) expect_close(fast[g], ref[g], 2e-4, names[g]);
  }
}

}  // namespace
}  // namespace graft
