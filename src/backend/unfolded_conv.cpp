// Convolutions of few input channels (a network's first layer: 3 colours,
// a 3x3 window) as matrix products over the unfolded input. Image by image
// and band by band of output rows,
//   U (C_in*kh*kw x the band's outputs): the input values under each tap
//   Y's band (C_out x the band's outputs) = W (C_out x C_in*kh*kw) . U
//   dW = the sum over images and bands of dY's band . U^T
// with U made again for the weights' gradient rather than kept. A band
// (about 4096 outputs) keeps U and Y's band in L2 together: whole images
// at once (1.4 MB of U, 1.6 MB of Y) took 30% longer. oneDNN's
// convolution wants channels-last activations: MobileNetV2's first layer at
// batch 32 reordered 19 MB in and 51 MB out around 6 ms of convolution
// (15 ms in all), and 51 MB of dY to a blocked layout for the weights'
// gradient (9.5 ms in all). The input's gradient (never wanted of a graph
// input) is left to the convolution primitives: a case that wants it is
// declined.
#include <algorithm>
#include <vector>

#include "backend/conv_case.h"
#include "backend/depthwise_planes.h"
#include "backend/products.h"

namespace graft::backend {

namespace {

constexpr int64_t kBandOutputs = 4096;

struct Unfolding {
  Plane p;  // the window's geometry on one channel
  int64_t batch, in_c, out_c;
  int64_t band;  // output rows per band (the last band may have fewer)
  int64_t rows() const { return in_c * p.kh * p.kw; }
  int64_t cols() const { return p.out_size(); }
};

Unfolding unfolding_of(const ConvCase& k) {
  const Plane p{k.x[2], k.x[3],       k.y[2],       k.y[3],       k.w[2],
                k.w[3], k.strides[0], k.strides[1], k.pad_l[0], k.pad_l[1]};
  const int64_t bands = (p.out_size() + kBandOutputs - 1) / kBandOutputs;
  return {p, k.x[0], k.x[1], k.y[1], (p.oh + bands - 1) / bands};
}

// Output rows [first, first + count) of an image.
struct Band {
  int64_t first, count;
};

template <typename EachBand>
void for_each_band(const Unfolding& u, const EachBand& each) {
  for (int64_t o = 0; o < u.p.oh; o += u.band) each(Band{o, std::min(u.band, u.p.oh - o)});
}

// The values of input row `from` under kernel column j, for the output
// columns [first(j), last(j)): from[q * sw - pl + j]. With column stride 2
// the row's even and odd columns are first laid apart (`phases`), so that
// every kernel column copies a contiguous run (a strided read per value
// took a quarter of the step's time).
struct RowReader {
  const Plane& p;
  std::vector<float>& phases;
  void prepare(const float* from) {
    if (p.sw != 2) return;
    phases.resize(p.w + 1);
    const int64_t half = (p.w + 1) / 2;
    for (int64_t m = 0; 2 * m < p.w; ++m) phases[m] = from[2 * m];
    for (int64_t m = 0; 2 * m + 1 < p.w; ++m) phases[half + m] = from[2 * m + 1];
  }
  void copy(const float* from, int64_t j, float* to) const {
    const int64_t first = p.first(j), last = p.last(j), s = j - p.pl;
    if (p.sw == 2) {
      // Column 2q + s lies in phase s & 1 at q + floor(s / 2).
      const int64_t at = (s & 1) * ((p.w + 1) / 2) + Plane::floor_div(s, 2) + first;
      std::copy_n(phases.data() + at, last - first, to + first);
    } else {
      for (int64_t q = first; q < last; ++q) to[q] = from[q * p.sw + s];
    }
  }
};

// U of one band of image x (in_c planes): rows() rows of b.count * ow.
void unfold(const Unfolding& u, const float* x, const Band& b, float* out) {
  const Plane& p = u.p;
  const int64_t width = b.count * p.ow;
  thread_local std::vector<float> phases;
  RowReader reader{p, phases};
  for (int64_t c = 0; c < u.in_c; ++c)
    for (int64_t o = b.first; o < b.first + b.count; ++o)
      for (int64_t i = 0; i < p.kh; ++i) {
        const int64_t in = o * p.sh - p.pt + i;
        const bool inside = in >= 0 && in < p.h;
        const float* from = inside ? x + (c * p.h + in) * p.w : nullptr;
        if (inside) reader.prepare(from);
        for (int64_t j = 0; j < p.kw; ++j) {
          float* to = out + ((c * p.kh + i) * p.kw + j) * width + (o - b.first) * p.ow;
          if (!inside) {
            std::fill_n(to, p.ow, 0.0f);
            continue;
          }
          std::fill_n(to, p.first(j), 0.0f);
          reader.copy(from, j, to);
          std::fill_n(to + p.last(j), p.ow - p.last(j), 0.0f);
        }
      }
}

// Y's band (+)= W . U.
std::shared_ptr<Product> output_product(const ConvCase& k, const Unfolding& u, int64_t width) {
  return product(k.key("unfolded") + std::to_string(width), plain_md({u.out_c, u.rows()}),
                 plain_md({u.rows(), width}), strided_md({u.out_c, width}, {u.cols(), 1}),
                 u.out_c * u.rows() * width, k.bias);
}

// dW += dY's band . U^T.
std::shared_ptr<Product> weight_product(const ConvCase& k, const Unfolding& u, int64_t width) {
  return product(k.key("unfolded_dw") + std::to_string(width),
                 strided_md({u.out_c, width}, {u.cols(), 1}),
                 strided_md({width, u.rows()}, {1, width}), plain_md({u.out_c, u.rows()}),
                 u.out_c * u.rows() * width, true);
}

// Whether every product has a fast kernel, made as each thread makes them.
bool has_products(const ConvCase& k, const Unfolding& u) {
  SerialScope serial;
  bool fast = true;
  for_each_band(u, [&](const Band& b) {
    fast = fast && output_product(k, u, b.count * u.p.ow) && weight_product(k, u, b.count * u.p.ow);
  });
  return fast;
}

}  // namespace

bool unfolded_forward(const ops::KernelContext& c, const ConvCase& k) {
  const Unfolding u = unfolding_of(k);
  if (!has_products(k, u)) return false;
  const float* x = c.in(0).data<float>();
  const float* w = c.in(1).data<float>();
  float* y = c.out(0).data<float>();
  const int threads = image_threads(k.macs(), u.batch);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t n = 0; n < u.batch; ++n) {
    SerialScope serial;
    thread_local std::vector<float> unfolded;
    unfolded.resize(u.rows() * u.band * u.p.ow);
    float* out = y + n * u.out_c * u.cols();
    if (k.bias)  // the product is added to it (a sum post-op), as pointwise_forward does
      for (int64_t o = 0; o < u.out_c; ++o)
        std::fill_n(out + o * u.cols(), u.cols(), c.in(2).data<float>()[o]);
    for_each_band(u, [&](const Band& b) {
      unfold(u, x + n * u.in_c * u.p.size(), b, unfolded.data());
      run(*output_product(k, u, b.count * u.p.ow), w, unfolded.data(), out + b.first * u.p.ow);
    });
  }
  count_served();
  return true;
}

bool unfolded_backward(const ops::BackwardContext& c, const ConvCase& k) {
  const Unfolding u = unfolding_of(k);
  if (c.wants_grad(0) || !has_products(k, u)) return false;
  const float* x = c.in(0).data<float>();
  const float* dy = c.grad_out(0).data<float>();
  if (c.wants_grad(1))
    per_thread_sums(image_threads(k.macs(), u.batch), u.batch, c.grad_in(1).numel(), c.grad_in(1).data<float>(),
                    [&](int64_t first, int64_t last, float* sum) {
                      thread_local std::vector<float> unfolded;
                      unfolded.resize(u.rows() * u.band * u.p.ow);
                      for (int64_t n = first; n < last; ++n)
                        for_each_band(u, [&](const Band& b) {
                          unfold(u, x + n * u.in_c * u.p.size(), b, unfolded.data());
                          run(*weight_product(k, u, b.count * u.p.ow),
                              dy + n * u.out_c * u.cols() + b.first * u.p.ow, unfolded.data(), sum);
                        });
                    });
  if (c.wants_grad(2)) {
    float* db = c.grad_in(2).data<float>();
    for (int64_t o = 0; o < u.out_c; ++o) {
      double sum = 0;
      for (int64_t n = 0; n < u.batch; ++n) {
        const float* row = dy + (n * u.out_c + o) * u.cols();
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t q = 0; q < u.cols(); ++q) s += row[q];
        sum += s;
      }
      db[o] = static_cast<float>(sum);
    }
  }
  count_served();
  return true;
}

}  // namespace graft::backend
