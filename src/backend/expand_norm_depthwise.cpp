// The expanding pointwise Conv and the block middle after it, in training
// (backend.h): the pointwise output E is made band by band of rows, from
// x, wherever it is read, and never stored.
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "backend/norm_depthwise_lanes.h"
#include "backend/products.h"

namespace graft::backend {

namespace {

// The step's geometry: n images of cin channels in, ce channels expanded,
// the middle's planes p.
struct ExpandShape {
  NormDepthwiseShape k;  // the middle's, with k.channels = ce
  int64_t cin;
  int64_t band_rows;  // output rows per band
};

// E's rows [first, last) of image i, all channels: ce planes of
// (last - first) x w floats in `e`.
void expand_rows(const ExpandShape& s, const ExpandNormDepthwiseInputs& in, int64_t i,
                 int64_t first, int64_t last, float* e) {
  const Plane& p = s.k.p;
  const int64_t pixels = (last - first) * p.w, ce = s.k.channels;
  const float* x = data(in.x) + (i * s.cin * p.h + first) * p.w;
  // E (ce x pixels) = We (ce x cin) . X (cin x pixels, rows h * w apart).
  const memory::desc we_md = strided_md({ce, s.cin}, {s.cin, 1});
  const memory::desc x_md = strided_md({s.cin, pixels}, {p.size(), 1});
  const memory::desc e_md = strided_md({ce, pixels}, {pixels, 1});
  std::shared_ptr<Product> product_of =
      product(fmt::format("expand {} {} {} {}", ce, s.cin, pixels, p.size()), we_md, x_md, e_md,
              ce * s.cin * pixels, false);
  if (product_of) run(*product_of, data(in.we), x, e);
  else dnnl_sgemm('N', 'N', ce, pixels, s.cin, 1.0f, data(in.we), s.cin, x, p.size(), 0.0f, e, pixels);
  if (in.be)
    for (int64_t c = 0; c < ce; ++c)
      for (int64_t j = 0; j < pixels; ++j) e[c * pixels + j] += data(in.be)[c];
}

ExpandShape shape_of(const NormDepthwise& f, const ExpandNormDepthwiseInputs& in,
                     int64_t band_rows) {
  const Shape& xs = in.x->shape();
  const int64_t ce = in.we->dim(0);
  std::optional<ConvCase> dw =
      conv_case(f.conv, {xs[0], ce, xs[2], xs[3]}, in.middle.w->shape(), in.middle.b != nullptr);
  GRAFT_ASSERT(dw && dw->depthwise() && dw->w[3] == 3 && dw->w[4] == 3 && in.we->dim(1) == xs[1]);
  ExpandShape s{{plane_of(*dw), xs[0], ce, 9}, xs[1], band_rows};
  if (s.band_rows <= 0) {
    // Output rows whose band of E (input rows, all channels) fits in about
    // half of L2, beside the step's other data.
    const Plane& p = s.k.p;
    const int64_t row_bytes = ce * p.w * int64_t{sizeof(float)};
    s.band_rows = std::max<int64_t>(1, ((int64_t{1} << 20) / row_bytes - p.kh) / p.sh + 1);
  }
  return s;
}

// The input rows [first, last) that output rows [o0, o1) read, and the
// plane of that band: its own top padding, its rows past the image's end
// read as padding.
struct Band {
  int64_t first, last;
  Plane p;
};
Band band_of(const Plane& p, int64_t o0, int64_t o1) {
  const int64_t first = std::max<int64_t>(0, o0 * p.sh - p.pt);
  const int64_t last = std::min(p.h, (o1 - 1) * p.sh - p.pt + p.kh);
  Plane b = p;
  b.h = last - first;
  b.oh = o1 - o0;
  b.pt = first + p.pt - o0 * p.sh;
  return {first, last, b};
}

// E's first value for each channel (image 0, pixel 0): the shift of its sums.
std::vector<float> first_values(const ExpandShape& s, const ExpandNormDepthwiseInputs& in) {
  std::vector<float> k(s.k.channels);
  for (int64_t c = 0; c < s.k.channels; ++c) {
    double v = in.be ? data(in.be)[c] : 0.0;
    for (int64_t j = 0; j < s.cin; ++j)
      v += double(data(in.we)[c * s.cin + j]) * data(in.x)[j * s.k.p.size()];
    k[c] = static_cast<float>(v);
  }
  return k;
}

// The first normalisation's statistics: E band by band, summed per thread
// (images split statically, so the sums add up in the same order every run).
BatchStatistics expanded_statistics(const ExpandShape& s, const ExpandNormDepthwiseInputs& in) {
  const Plane& p = s.k.p;
  const int64_t ce = s.k.channels, rows = std::max<int64_t>(1, s.band_rows * p.sh);
  const std::vector<float> k = first_values(s, in);
  const int threads = image_threads(s.k.n * ce * s.cin * p.size(), s.k.n);
  std::vector<std::vector<PlaneSums>> sums(threads, std::vector<PlaneSums>(ce));
#pragma omp parallel num_threads(threads)
  {
    SerialScope serial;
    const int t = omp_get_thread_num();
    std::vector<float> e(ce * rows * p.w);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.k.n; ++i)
      for (int64_t first = 0; first < p.h; first += rows) {
        const int64_t last = std::min(p.h, first + rows), pixels = (last - first) * p.w;
        expand_rows(s, in, i, first, last, e.data());
        for (int64_t c = 0; c < ce; ++c) sums[t][c] += shifted_sums(e.data() + c * pixels, pixels, k[c]);
      }
  }
  BatchStatistics st = empty_statistics(ce);
  for (int64_t c = 0; c < ce; ++c) {
    PlaneSums total;
    for (int t = 0; t < threads; ++t) total += sums[t][c];
    set_statistics(st, c, k[c], total, double(s.k.n * p.size()));
  }
  return st;
}

// The first normalisation of each channel, with its activation.
std::vector<InputMap> first_maps(const NormDepthwise& f, const ExpandShape& s,
                                 const NormDepthwiseInputs& m, const BatchStatistics& before) {
  std::vector<InputMap> maps(s.k.channels);
  for (int64_t c = 0; c < s.k.channels; ++c)
    maps[c] = {affine_of(before, c, data(m.scale1), data(m.shift1), f.before.epsilon),
               f.before.lo, f.before.hi};
  return maps;
}

// d = the depthwise convolution of before(E), band by band of output rows.
void convolve_expanded(const NormDepthwise& f, const ExpandShape& s,
                       const ExpandNormDepthwiseInputs& in, const BatchStatistics& before,
                       Tensor& d) {
  const Plane& p = s.k.p;
  const NormDepthwiseInputs& m = in.middle;
  const int64_t ce = s.k.channels;
  const std::vector<InputMap> maps = first_maps(f, s, m, before);
  const int threads = image_threads(s.k.n * ce * s.cin * p.size(), s.k.n);
#pragma omp parallel num_threads(threads)
  {
    SerialScope serial;
    std::vector<float> e;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.k.n; ++i)
      for (int64_t o0 = 0; o0 < p.oh; o0 += s.band_rows) {
        const Band b = band_of(p, o0, std::min(p.oh, o0 + s.band_rows));
        e.resize(ce * b.p.size());
        expand_rows(s, in, i, b.first, b.last, e.data());
        for (int64_t c = 0; c < ce; ++c)
          forward_plane(b.p, e.data() + c * b.p.size(), data(m.w) + c * s.k.taps,
                        m.b ? data(m.b)[c] : 0.0f,
                        d.data<float>() + s.k.out_at(i, c) + o0 * p.ow, &maps[c]);
      }
  }
}

// What a band of output rows [o0, o1) works on in backward: the gradient
// reaching d at rows [h0, h1) (a row beyond the band each side), which
// completes the gradient reaching E at rows [own0, own1) (the band's own:
// each input row is some band's); E's rows for all that.
struct BackwardBand {
  int64_t h0, h1, own0, own1;
  Band e;  // E's rows, and the plane from them to d's rows [h0, h1)
};
BackwardBand backward_band(const Plane& p, int64_t o0, int64_t o1) {
  BackwardBand b;
  b.h0 = std::max<int64_t>(0, o0 - 1);
  b.h1 = std::min(p.oh, o1 + 1);
  b.own0 = o0 == 0 ? 0 : o0 * p.sh;
  b.own1 = o1 == p.oh ? p.h : o1 * p.sh;
  b.e = band_of(p, b.h0, b.h1);
  return b;
}

// One thread's share of the gradients, added up over its images.
struct Shares {
  std::vector<double> dwd, dbd, dbe;  // depthwise weights and bias, expansion bias
  std::vector<float> dwe;             // expansion weights (ce x cin)
  std::vector<PlaneSums> sums1;
  Shares(int64_t ce, int64_t cin)
      : dwd(ce * 9), dbd(ce), dbe(ce), dwe(ce * cin), sums1(ce) {}
};

struct Backward {
  const NormDepthwise& f;
  const ExpandShape& s;
  const ExpandNormDepthwiseInputs& in;
  const Tensor& d;
  const Tensor& dy;
  std::vector<InputMap> map1;
  std::vector<Affine> f2;
  std::vector<ChannelGradient> g1, g2;
  std::vector<float> turned;

  // E at the band's rows (e), the gradient reaching d (dd) and E (da1, its
  // own rows complete), each ce planes of the band.
  void band(int64_t i, const BackwardBand& b, std::vector<float>& e, std::vector<float>& dd,
            std::vector<float>& da1) const {
    const Plane& p = s.k.p;
    const int64_t ce = s.k.channels, d_rows = (b.h1 - b.h0) * p.ow;
    e.resize(ce * b.e.p.size());
    dd.resize(ce * d_rows);
    da1.resize(ce * b.e.p.size());
    expand_rows(s, in, i, b.e.first, b.e.last, e.data());
    for (int64_t c = 0; c < ce; ++c) {
      const int64_t at = s.k.out_at(i, c) + b.h0 * p.ow;
      gradient_plane(d.data<float>() + at, dy.data<float>() + at, dd.data() + c * d_rows, d_rows,
                     f2[c], f.after.lo, f.after.hi, g2[c]);
      backward_data_plane(b.e.p, dd.data() + c * d_rows, turned.data() + c * 9,
                          da1.data() + c * b.e.p.size());
    }
  }

  // The depthwise weights' gradient over the band's output rows, and the
  // first normalisation's sums over its own input rows.
  void weights_and_sums(int64_t o0, int64_t o1, const BackwardBand& b, const std::vector<float>& e,
                        const std::vector<float>& dd, const std::vector<float>& da1,
                        Shares& sh) const {
    const Plane& p = s.k.p;
    const Band wb = band_of(p, o0, o1);
    const int64_t d_rows = (b.h1 - b.h0) * p.ow, own = (b.own0 - b.e.first) * p.w;
    for (int64_t c = 0; c < s.k.channels; ++c) {
      const float* ec = e.data() + c * b.e.p.size();
      weights_plane(wb.p, ec + (wb.first - b.e.first) * p.w,
                    dd.data() + c * d_rows + (o0 - b.h0) * p.ow, sh.dwd.data() + c * 9,
                    &sh.dbd[c], &map1[c]);
      sh.sums1[c] += gradient_sums(ec + own, da1.data() + c * b.e.p.size() + own,
                                   (b.own1 - b.own0) * p.w, map1[c].f, f.before.lo, f.before.hi);
    }
  }

  // E's gradient at the band's own rows (in da1's place), multiplied into
  // the expansion's weight gradient and written into dx's rows.
  void expansion_gradients(int64_t i, const BackwardBand& b, const std::vector<float>& e,
                           std::vector<float>& da1, float* dx, Shares& sh) const {
    const Plane& p = s.k.p;
    const int64_t ce = s.k.channels, pixels = (b.own1 - b.own0) * p.w;
    const int64_t own = (b.own0 - b.e.first) * p.w, ld = b.e.p.size();
    float* de = da1.data() + own;  // ce rows of `pixels`, ld apart
    for (int64_t c = 0; c < ce; ++c) {
      gradient_plane(e.data() + c * ld + own, de + c * ld, de + c * ld, pixels, map1[c].f,
                     f.before.lo, f.before.hi, g1[c]);
      if (in.be) sh.dbe[c] += shifted_sums(de + c * ld, pixels, 0.0f).first;
    }
    const float* x = data(in.x) + i * s.cin * p.size() + b.own0 * p.w;
    // dWe (ce x cin) += dE (ce x pixels) . X^T; dX (cin x pixels) = We^T . dE.
    dnnl_sgemm('N', 'T', ce, s.cin, pixels, 1.0f, de, ld, x, p.size(), 1.0f, sh.dwe.data(), s.cin);
    if (dx)
      dnnl_sgemm('T', 'N', s.cin, pixels, ce, 1.0f, data(in.we), s.cin, de, ld, 0.0f,
                 dx + i * s.cin * p.size() + b.own0 * p.w, p.size());
  }
};

// Runs pass(i, o0, o1, shares) over every band of every image, images split
// among the threads statically, and returns each thread's shares in order.
template <typename Pass>
std::vector<Shares> over_bands(const ExpandShape& s, Pass pass) {
  const Plane& p = s.k.p;
  const int threads = image_threads(s.k.n * s.k.channels * s.cin * p.size(), s.k.n);
  std::vector<Shares> shares(threads, Shares(s.k.channels, s.cin));
#pragma omp parallel num_threads(threads)
  {
    SerialScope serial;
    Shares& mine = shares[omp_get_thread_num()];
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.k.n; ++i)
      for (int64_t o0 = 0; o0 < p.oh; o0 += s.band_rows)
        pass(i, o0, std::min(p.oh, o0 + s.band_rows), mine);
  }
  return shares;
}

}  // namespace

NormDepthwiseStatistics expand_norm_depthwise_forward(const NormDepthwise& f,
                                                      const ExpandNormDepthwiseInputs& in,
                                                      int64_t band_rows, Tensor& mean1,
                                                      Tensor& var1, Tensor& mean2, Tensor& var2,
                                                      Tensor& d, Tensor& y) {
  const ExpandShape s = shape_of(f, in, band_rows);
  const Plane& p = s.k.p;
  const int64_t ce = s.k.channels;
  NormDepthwiseStatistics st{expanded_statistics(s, in), empty_statistics(ce)};
  convolve_expanded(f, s, in, st.before, d);
  // The second normalisation, channel by channel (a channel's planes, all
  // images, are read twice from L2).
  const int64_t out_size = p.out_size();
  const float* pd = d.data<float>();
  float* py = y.data<float>();
  const NormDepthwiseInputs& m = in.middle;
#pragma omp parallel for num_threads(loop_threads(y.numel())) schedule(static)
  for (int64_t c = 0; c < ce; ++c) {
    channel_statistics(pd + s.k.out_at(0, c), s.k.n, ce * out_size, out_size, c, st.after);
    const Affine f2 = affine_of(st.after, c, data(m.scale2), data(m.shift2), f.after.epsilon);
    for (int64_t i = 0; i < s.k.n; ++i)
      normalize_plane(pd + s.k.out_at(i, c), py + s.k.out_at(i, c), out_size, f2, f.after.lo,
                      f.after.hi);
  }
  update_running(f.before, st.before, s.k.n * p.size(), mean1, var1);
  update_running(f.after, st.after, s.k.n * out_size, mean2, var2);
  count_served();
  return st;
}

void expand_norm_depthwise_backward(const NormDepthwise& f, const BatchStatistics& before,
                                    const BatchStatistics& after,
                                    const ExpandNormDepthwiseInputs& in, const Tensor& d,
                                    const Tensor& dy, int64_t band_rows,
                                    const ExpandNormDepthwiseGradients& grads) {
  const ExpandShape s = shape_of(f, in, band_rows);
  const Plane& p = s.k.p;
  const int64_t ce = s.k.channels, out_size = p.out_size();
  const NormDepthwiseInputs& m = in.middle;
  const NormDepthwiseGradients& gm = grads.middle;
  Backward bw{f, s, in, d, dy, first_maps(f, s, m, before), std::vector<Affine>(ce),
              std::vector<ChannelGradient>(ce), std::vector<ChannelGradient>(ce),
              turned_kernels(data(m.w), ce, 9)};

  // The second normalisation's gradient, channel by channel from d and dy.
#pragma omp parallel for num_threads(loop_threads(d.numel())) schedule(static)
  for (int64_t c = 0; c < ce; ++c) {
    bw.f2[c] = affine_of(after, c, data(m.scale2), data(m.shift2), f.after.epsilon);
    PlaneSums sums;
    for (int64_t i = 0; i < s.k.n; ++i)
      sums += gradient_sums(d.data<float>() + s.k.out_at(i, c), dy.data<float>() + s.k.out_at(i, c),
                            out_size, bw.f2[c], f.after.lo, f.after.hi);
    bw.g2[c] = channel_gradient(after, c, double(s.k.n * out_size), data(m.scale2)[c],
                                f.after.epsilon, sums);
    if (gm.dscale2) data(gm.dscale2)[c] = static_cast<float>(bw.g2[c].dscale);
    if (gm.dshift2) data(gm.dshift2)[c] = static_cast<float>(bw.g2[c].dshift);
  }

  // The depthwise weights' gradient and the first normalisation's.
  const std::vector<Shares> first =
      over_bands(s, [&](int64_t i, int64_t o0, int64_t o1, Shares& sh) {
        thread_local std::vector<float> e, dd, da1;
        const BackwardBand b = backward_band(p, o0, o1);
        bw.band(i, b, e, dd, da1);
        bw.weights_and_sums(o0, o1, b, e, dd, da1, sh);
      });
  for (int64_t c = 0; c < ce; ++c) {
    PlaneSums sums1;
    double db = 0;
    std::vector<double> dw(9, 0.0);
    for (const Shares& sh : first) {
      sums1 += sh.sums1[c];
      db += sh.dbd[c];
      for (int t = 0; t < 9; ++t) dw[t] += sh.dwd[c * 9 + t];
    }
    if (gm.dw)
      for (int t = 0; t < 9; ++t) data(gm.dw)[c * 9 + t] = static_cast<float>(dw[t]);
    if (gm.db) data(gm.db)[c] = static_cast<float>(db);
    bw.g1[c] = channel_gradient(before, c, double(s.k.n * p.size()), data(m.scale1)[c],
                                f.before.epsilon, sums1);
    if (gm.dscale1) data(gm.dscale1)[c] = static_cast<float>(bw.g1[c].dscale);
    if (gm.dshift1) data(gm.dshift1)[c] = static_cast<float>(bw.g1[c].dshift);
  }
  if (!grads.dx && !grads.dwe && !grads.dbe) return;

  // E's gradient, into the expansion's.
  float* dx = data(grads.dx);
  const std::vector<Shares> second =
      over_bands(s, [&](int64_t i, int64_t o0, int64_t o1, Shares& sh) {
        thread_local std::vector<float> e, dd, da1;
        const BackwardBand b = backward_band(p, o0, o1);
        bw.band(i, b, e, dd, da1);
        bw.expansion_gradients(i, b, e, da1, dx, sh);
      });
  for (int64_t c = 0; c < ce; ++c) {
    double db = 0;
    for (const Shares& sh : second) db += sh.dbe[c];
    if (grads.dbe) data(grads.dbe)[c] = static_cast<float>(db);
    if (grads.dwe)
      for (int64_t j = 0; j < s.cin; ++j) {
        double w = 0;
        for (const Shares& sh : second) w += sh.dwe[c * s.cin + j];
        data(grads.dwe)[c * s.cin + j] = static_cast<float>(w);
      }
  }
  count_served();
}

}  // namespace graft::backend
