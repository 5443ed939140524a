// Pointwise convolutions (1x1 kernel, unit strides, no padding, one group)
// as matrix products on graft's own NCHW layout. Image by image,
//   Y[n]  (C_out x HW)  = W (C_out x C_in) . X[n] (C_in x HW)
//   dX[n] (C_in x HW)   = W^T . dY[n]
//   dW    (C_out x C_in) = sum over n of dY[n] . X[n]^T
// which oneDNN's matmul computes without any reorder; the convolution
// primitive would first reorder activations to channels-last and weights to
// a blocked layout, and back. Measured on MobileNetV2's pointwise layers:
// 2-3x faster at 28x28 and larger, within 20% at 7x7.
//
// Each product is built before any runs, and a product oneDNN would run on
// its reference implementation declines, so the convolution primitives
// (conv.cpp) take the case instead.
#include <algorithm>
#include <vector>

#include "backend/conv_case.h"
#include "backend/products.h"

namespace graft::backend {

namespace {

struct Plan {
  int64_t batch, out_c, in_c, plane;
};

Plan plan_of(const ConvCase& k) {
  return {k.x[0], k.y[1], k.x[1], shape_numel(Shape(k.x.begin() + 2, k.x.end()))};
}

// The rows of a product's output written at once. On planes of 56x56 and
// more the whole output's rows, each a plane apart, are too many streams
// for the caches (the row stride is close to a multiple of 4 KiB): oneDNN's
// batched product of 96 rows at 112x112 wrote at 6 GB/s. Bands of at most
// 32 rows, measured at batch 32: 16->96 at 112x112 27 -> 9-10 ms, 24->144
// at 56x56 3.8-11 -> 3.2-3.9 ms; at 28x28 and less the whole is as fast.
int64_t row_band(int64_t rows, int64_t plane) {
  if (plane < 56 * 56) return rows;
  for (int64_t band = 32; band >= 8; band -= 8)
    if (rows % band == 0) return band;
  return rows;
}

// dW += dY[n] . X[n]^T, one image's product.
std::shared_ptr<Product> weight_product(const ConvCase& k, const Plan& p) {
  return product(k.key("pointwise_dw"), plain_md({p.out_c, p.plane}),
                 strided_md({p.plane, p.in_c}, {1, p.plane}), plain_md({p.out_c, p.in_c}),
                 p.out_c * p.in_c * p.plane, true);
}

// dW = the sum over images of dY[n] . X[n]^T; on planes of 14x14 and more
// each thread sums a share of the images (per_thread_sums). Measured at
// batch 32 on MobileNetV2's layers:
// 144->24 at 56x56 6.9 -> 4.0 ms, 32->16 at 112x112 7.0 -> 3.7 ms, 20-30%
// less at 14x14; at 7x7 the products are wide and the adding costs more.
void weight_gradient(const ConvCase& k, const Plan& p, const float* x, const float* dy,
                     Tensor& dw) {
  int threads = 1;
  if (p.plane >= 14 * 14) {
    threads = image_threads(p.batch * p.out_c * p.in_c * p.plane, p.batch);
    SerialScope serial;
    if (!weight_product(k, p)) threads = 1;  // each thread's product is made the same way
  }
  per_thread_sums(threads, p.batch, dw.numel(), dw.data<float>(),
                  [&](int64_t first, int64_t last, float* sum) {
                    std::shared_ptr<Product> mine = weight_product(k, p);
                    for (int64_t n = first; n < last; ++n)
                      run(*mine, dy + n * p.out_c * p.plane, x + n * p.in_c * p.plane, sum);
                  });
}

}  // namespace

// The whole batch is one product per band of output rows (row_band) with W
// broadcast. The bias is written into Y first and the product added to it (a
// sum post-op): as the matmul's own bias it would be one value per row, which
// oneDNN's fast matmul lacks.
bool pointwise_forward(const ops::KernelContext& c, const ConvCase& k) {
  Plan p = plan_of(k);
  const int64_t band = row_band(p.out_c, p.plane);
  auto y =
      product(k.key("pointwise"), plain_md({1, band, p.in_c}), plain_md({p.batch, p.in_c, p.plane}),
              strided_md({p.batch, band, p.plane}, {p.out_c * p.plane, p.plane, 1}),
              p.batch * band * p.in_c * p.plane, k.bias);
  if (!y) return false;
  float* out = c.out(0).data<float>();
  if (k.bias) {
    const float* b = c.in(2).data<float>();
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t o = 0; o < p.out_c; ++o)
        std::fill_n(out + (n * p.out_c + o) * p.plane, p.plane, b[o]);
  }
  const float* w = c.in(1).data<float>();
  for (int64_t o = 0; o < p.out_c; o += band)
    run(*y, w + o * p.in_c, c.in(0).raw(), out + o * p.plane);
  count_served();
  return true;
}

// dW and dB accumulate one image at a time (a sum post-op) into gradients
// zeroed first; dB is dY times a vector of ones.
bool pointwise_backward(const ops::BackwardContext& c, const ConvCase& k) {
  Plan p = plan_of(k);
  std::shared_ptr<Product> dx, dw, db;
  const int64_t dx_band = row_band(p.in_c, p.plane);
  if (c.wants_grad(0)) {
    memory::desc w_t = strided_md({1, dx_band, p.out_c}, {p.out_c * p.in_c, 1, p.in_c});
    dx = product(k.key("pointwise_dx"), w_t, plain_md({p.batch, p.out_c, p.plane}),
                 strided_md({p.batch, dx_band, p.plane}, {p.in_c * p.plane, p.plane, 1}),
                 p.batch * p.out_c * dx_band * p.plane, false);
    if (!dx) return false;
  }
  if (c.wants_grad(1) && !(dw = weight_product(k, p))) return false;
  if (c.wants_grad(2)) {
    // dB[n] = dY[n] . ones, accumulated over the batch.
    db = product(k.key("pointwise_db"), plain_md({p.out_c, p.plane}), plain_md({p.plane, 1}),
                 plain_md({p.out_c, 1}), p.out_c * p.plane, true);
    if (!db) return false;
  }
  const float* x = c.in(0).data<float>();
  const float* dy = c.grad_out(0).data<float>();
  if (dx) {
    const float* w = c.in(1).data<float>();
    float* grad_x = c.grad_in(0).data<float>();
    for (int64_t i = 0; i < p.in_c; i += dx_band) run(*dx, w + i, dy, grad_x + i * p.plane);
  }
  if (dw) weight_gradient(k, p, x, dy, c.grad_in(1));
  if (db) {
    memory ones = scratch(plain_md({p.plane, 1}), kExtraSlot);
    std::fill_n(static_cast<float*>(ones.get_data_handle()), p.plane, 1.0f);
    std::fill_n(c.grad_in(2).data<float>(), c.grad_in(2).numel(), 0.0f);
    for (int64_t n = 0; n < p.batch; ++n)
      run(*db, dy + n * p.out_c * p.plane, ones.get_data_handle(), c.grad_in(2).raw());
  }
  count_served();
  return true;
}

}  // namespace graft::backend
