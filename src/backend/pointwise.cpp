// Pointwise convolutions (1x1 kernel, unit strides, no padding, one group)
// as matrix products on graft's own NCHW layout. Image by image,
//   Y[n]  (C_out x HW)  = W (C_out x C_in) . X[n] (C_in x HW)
//   dX[n] (C_in x HW)   = W^T . dY[n]
//   dW    (C_out x C_in) = sum over n of dY[n] . X[n]^T
// which oneDNN's matmul computes without any reorder; the convolution
// primitive would first reorder activations to channels-last and weights to
// a blocked layout, and back. Measured on MobileNetV2's pointwise layers:
// 2-3x faster at 28x28 and larger, within 20% at 7x7. Large planes write
// in bands of rows (row_band); planes of 7x7 and less, for a batch, run
// channels-last instead (runs_channels_last).
//
// Each product is built before any runs, and a product oneDNN would run on
// its reference implementation declines, so the convolution primitives
// (conv.cpp) take the case instead.
#include <algorithm>
#include <vector>

#include "backend/backend.h"
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

// dX and dW on the plain layout; dB is left to the caller.
bool plain_backward(const ops::BackwardContext& c, const ConvCase& k, const Plan& p) {
  std::shared_ptr<Product> dx, dw;
  const int64_t dx_band = row_band(p.in_c, p.plane);
  if (c.wants_grad(0)) {
    memory::desc w_t = strided_md({1, dx_band, p.out_c}, {p.out_c * p.in_c, 1, p.in_c});
    dx = product(k.key("pointwise_dx"), w_t, plain_md({p.batch, p.out_c, p.plane}),
                 strided_md({p.batch, dx_band, p.plane}, {p.in_c * p.plane, p.plane, 1}),
                 p.batch * p.out_c * dx_band * p.plane, false);
    if (!dx) return false;
  }
  if (c.wants_grad(1) && !(dw = weight_product(k, p))) return false;
  const float* dy = c.grad_out(0).data<float>();
  if (dx) {
    const float* w = c.in(1).data<float>();
    float* grad_x = c.grad_in(0).data<float>();
    for (int64_t i = 0; i < p.in_c; i += dx_band) run(*dx, w + i, dy, grad_x + i * p.plane);
  }
  if (dw) weight_gradient(k, p, c.in(0).data<float>(), dy, c.grad_in(1));
  return true;
}

// On planes of 7x7 and less an image's product is 49 columns wide, too
// narrow for oneDNN's kernels: there the batch is turned channels-last
// (oneDNN reorders) and each product runs once over all its pixels,
//   Y^T (N*HW x C_out) = X^T . W^T,  dX^T = dY^T . W,  dW = dY . X^T.
// Measured standalone at batch 32, reorders included: input gradients
// 10.3 -> 7.0 ms (320 -> 1280), 8.3 -> 5.2 (960 -> 320), 3.7 -> 2.6
// (960 -> 160); forwards up to 1.7 ms less. A few images gain nothing.
bool runs_channels_last(const Plan& p) { return p.plane <= 7 * 7 && p.batch >= 8; }

// The turns between the plain layout and channels-last, of X and of Y.
struct Turns {
  Reorder x_in, x_out, y_in, y_out;
};

std::shared_ptr<Turns> turns(const ConvCase& k, const Plan& p) {
  const int64_t cost = elements_cost(p.batch * (p.in_c + p.out_c) * p.plane);
  return cached<Turns>(k.key("pointwise_turns"), cost, [&] {
    auto plain = [&](int64_t ch) { return plain_md({p.batch, ch, p.plane}); };
    // On 1x1 planes oneDNN takes the two layouts as equal: no reorder is made
    // and the products write in place (output_memory).
    auto last = [&](int64_t ch) {
      return strided_md({p.batch, ch, p.plane}, {ch * p.plane, 1, ch});
    };
    auto t = std::make_shared<Turns>();
    t->x_in = Reorder(plain(p.in_c), last(p.in_c));
    t->x_out = Reorder(last(p.in_c), plain(p.in_c));
    t->y_in = Reorder(plain(p.out_c), last(p.out_c));
    t->y_out = Reorder(last(p.out_c), plain(p.out_c));
    return t;
  });
}

// A product over all pixels, channels-last: rows x cols = (rows x inner) .
// (inner x cols), the weights read with the given strides.
std::shared_ptr<Product> pixel_product(const ConvCase& k, const char* what, const Plan& p,
                                       int64_t cols, int64_t inner, const Dims& src_strides,
                                       const Dims& weight_strides) {
  const int64_t rows = p.batch * p.plane;
  return product(k.key(what), strided_md({rows, inner}, src_strides),
                 strided_md({inner, cols}, weight_strides), plain_md({rows, cols}),
                 rows * inner * cols, false);
}

// The three products channels-last: Y^T = X^T . W^T, dX^T = dY^T . W, and
// dW (C_out x C_in) = dY (C_out x N*HW) . X^T with dY^T read transposed.
std::shared_ptr<Product> channels_last_y(const ConvCase& k, const Plan& p) {
  return pixel_product(k, "pointwise_cl", p, p.out_c, p.in_c, {p.in_c, 1}, {1, p.in_c});
}
std::shared_ptr<Product> channels_last_dx(const ConvCase& k, const Plan& p) {
  return pixel_product(k, "pointwise_cl_dx", p, p.in_c, p.out_c, {p.out_c, 1}, {p.in_c, 1});
}
std::shared_ptr<Product> channels_last_dw(const ConvCase& k, const Plan& p) {
  const int64_t rows = p.batch * p.plane;
  return product(k.key("pointwise_cl_dw"), strided_md({p.out_c, rows}, {1, p.out_c}),
                 plain_md({rows, p.in_c}), plain_md({p.out_c, p.in_c}), rows * p.in_c * p.out_c,
                 false);
}

void add_bias(const Plan& p, const float* b, float* out) {
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t o = 0; o < p.out_c; ++o) {
      float* plane = out + (n * p.out_c + o) * p.plane;
      for (int64_t q = 0; q < p.plane; ++q) plane[q] += b[o];
    }
}

void add_bias_channels_last(const Plan& p, const float* b, float* out) {
  for (int64_t r = 0; r < p.batch * p.plane; ++r)
    for (int64_t o = 0; o < p.out_c; ++o) out[r * p.out_c + o] += b[o];
}

// X channels-last: the value itself when it is stored so (ConvLayout), else
// turned into a scratch slot.
const void* x_channels_last(const Tensor& x, const Turns& t, ConvLayout layout) {
  if (layout.x_channels_last) return x.raw();
  return t.x_in.to(wrap(t.x_in.source(), x), kSrcSlot).get_data_handle();
}

bool channels_last_forward(const ops::KernelContext& c, const ConvCase& k, const Plan& p,
                           ConvLayout layout = {}) {
  auto y = channels_last_y(k, p);
  if (!y) return false;
  const Turns& t = *turns(k, p);
  const void* xt = x_channels_last(c.in(0), t, layout);
  if (layout.y_channels_last) {
    run(*y, xt, c.in(1).raw(), c.out(0).raw());
    if (k.bias) add_bias_channels_last(p, c.in(2).data<float>(), c.out(0).data<float>());
    return true;
  }
  const memory out = wrap(t.y_out.target(), c.out(0));
  memory yt = output_memory(t.y_out, out, kDstSlot);
  run(*y, xt, c.in(1).raw(), yt.get_data_handle());
  t.y_out.into(yt, out);
  if (k.bias) add_bias(p, c.in(2).data<float>(), c.out(0).data<float>());
  return true;
}

// dX and dW channels-last; dB is left to the caller.
bool channels_last_backward(const ops::BackwardContext& c, const ConvCase& k, const Plan& p,
                            ConvLayout layout = {}) {
  std::shared_ptr<Product> dx, dw;
  if (c.wants_grad(0) && !(dx = channels_last_dx(k, p))) return false;
  if (c.wants_grad(1) && !(dw = channels_last_dw(k, p))) return false;
  if (!dx && !dw) return true;
  const Turns& t = *turns(k, p);
  const void* dyt =
      layout.y_channels_last
          ? c.grad_out(0).raw()
          : t.y_in.to(wrap(t.y_in.source(), c.grad_out(0)), kDiffDstSlot).get_data_handle();
  if (dx && layout.x_channels_last) {
    run(*dx, dyt, c.in(1).raw(), c.grad_in(0).raw());
  } else if (dx) {
    const memory grad_x = wrap(t.x_out.target(), c.grad_in(0));
    memory dxt = output_memory(t.x_out, grad_x, kDiffSrcSlot);
    run(*dx, dyt, c.in(1).raw(), dxt.get_data_handle());
    t.x_out.into(dxt, grad_x);
  }
  if (dw) run(*dw, dyt, x_channels_last(c.in(0), t, layout), c.grad_in(1).raw());
  return true;
}

// dB[n] = dY[n] . ones on the plain layout, accumulated over the batch.
std::shared_ptr<Product> bias_product(const ConvCase& k, const Plan& p) {
  return product(k.key("pointwise_db"), plain_md({p.out_c, p.plane}), plain_md({p.plane, 1}),
                 plain_md({p.out_c, 1}), p.out_c * p.plane, true);
}

// dB = dY summed over images and pixels, into a gradient zeroed first: by
// bias_product on the plain layout, a sum over rows channels-last. False
// when oneDNN has no fast product for it.
bool bias_gradient(const ops::BackwardContext& c, const ConvCase& k, const Plan& p,
                   bool dy_channels_last) {
  float* db = c.grad_in(2).data<float>();
  const float* dy = c.grad_out(0).data<float>();
  std::fill_n(db, p.out_c, 0.0f);
  if (dy_channels_last) {
    for (int64_t r = 0; r < p.batch * p.plane; ++r)
      for (int64_t o = 0; o < p.out_c; ++o) db[o] += dy[r * p.out_c + o];
    return true;
  }
  std::shared_ptr<Product> sums = bias_product(k, p);
  if (!sums) return false;
  memory ones = scratch(plain_md({p.plane, 1}), kExtraSlot);
  std::fill_n(static_cast<float*>(ones.get_data_handle()), p.plane, 1.0f);
  for (int64_t n = 0; n < p.batch; ++n)
    run(*sums, dy + n * p.out_c * p.plane, ones.get_data_handle(), db);
  return true;
}

}  // namespace

// The whole batch is one product per band of output rows (row_band) with W
// broadcast. The bias is written into Y first and the product added to it (a
// sum post-op): as the matmul's own bias it would be one value per row, which
// oneDNN's fast matmul lacks.
bool pointwise_forward(const ops::KernelContext& c, const ConvCase& k) {
  Plan p = plan_of(k);
  if (runs_channels_last(p)) {
    if (!channels_last_forward(c, k, p)) return false;
    count_served();
    return true;
  }
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

// dW (on the plain layout) accumulates one image at a time (a sum post-op)
// into a gradient zeroed first. The bias's product is made before anything
// is written, so that declining leaves nothing half done.
bool pointwise_backward(const ops::BackwardContext& c, const ConvCase& k) {
  Plan p = plan_of(k);
  if (c.wants_grad(2) && !bias_product(k, p)) return false;
  if (!(runs_channels_last(p) ? channels_last_backward(c, k, p) : plain_backward(c, k, p)))
    return false;
  if (c.wants_grad(2)) bias_gradient(c, k, p, false);
  count_served();
  return true;
}

bool serves_conv_layout(const Node& conv, const Shape& x, const Shape& w, bool bias) {
  if (!enabled()) return false;
  std::optional<ConvCase> k = conv_case(conv, x, w, bias);
  if (!k || !k->pointwise()) return false;
  const Plan p = plan_of(*k);
  if (!runs_channels_last(p)) return false;
  // Made now (and cached): a product oneDNN would run on its reference
  // implementation declines the case.
  return channels_last_y(*k, p) && channels_last_dx(*k, p) && channels_last_dw(*k, p);
}

void conv_forward_in_layout(const ops::KernelContext& c, ConvLayout layout) {
  std::optional<ConvCase> k = conv_case(c.node, c.in(0).shape(), c.in(1).shape(), c.has_input(2));
  GRAFT_ASSERT(k && k->pointwise());
  if (!channels_last_forward(c, *k, plan_of(*k), layout))
    fail(ErrorKind::kInternal, "{}: no fast product for a channels-last value", c.node.describe());
  count_served();
}

void conv_backward_in_layout(const ops::BackwardContext& c, ConvLayout layout) {
  std::optional<ConvCase> k = conv_case(c.node, c.in(0).shape(), c.in(1).shape(), true);
  GRAFT_ASSERT(k && k->pointwise());
  const Plan p = plan_of(*k);
  if (!channels_last_backward(c, *k, p, layout) ||
      (c.wants_grad(2) && !bias_gradient(c, *k, p, layout.y_channels_last)))
    fail(ErrorKind::kInternal, "{}: no fast product for a channels-last value", c.node.describe());
  count_served();
}

}  // namespace graft::backend
