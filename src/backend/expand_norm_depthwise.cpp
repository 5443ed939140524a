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
  // Row-major: E (ce x pixels) = We (ce x cin) . X (cin x pixels, rows h * w apart).
  dnnl_sgemm('N', 'N', ce, pixels, s.cin, 1.0f, data(in.we), s.cin, x, p.size(), 0.0f, e, pixels);
  if (in.be)
    for (int64_t c = 0; c < ce; ++c)
      for (int64_t j = 0; j < pixels; ++j) e[c * pixels + j] += data(in.be)[c];
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

// y = the depthwise convolution of before(E), band by band of output rows.
void convolve_expanded(const NormDepthwise& f, const ExpandShape& s,
                       const ExpandNormDepthwiseInputs& in, const BatchStatistics& before,
                       Tensor& y) {
  const Plane& p = s.k.p;
  const NormDepthwiseInputs& m = in.middle;
  const int64_t ce = s.k.channels;
  std::vector<InputMap> maps(ce);
  for (int64_t c = 0; c < ce; ++c)
    maps[c] = {affine_of(before, c, data(m.scale1), data(m.shift1), f.before.epsilon),
               f.before.lo, f.before.hi};
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
                        y.data<float>() + s.k.out_at(i, c) + o0 * p.ow, &maps[c]);
      }
  }
}

}  // namespace

NormDepthwiseStatistics expand_norm_depthwise_forward(const NormDepthwise& f,
                                                      const ExpandNormDepthwiseInputs& in,
                                                      int64_t band_rows, Tensor& mean1,
                                                      Tensor& var1, Tensor& mean2, Tensor& var2,
                                                      Tensor& y) {
  const Shape& xs = in.x->shape();
  const int64_t ce = in.we->dim(0);
  std::optional<ConvCase> dw =
      conv_case(f.conv, {xs[0], ce, xs[2], xs[3]}, in.middle.w->shape(), in.middle.b != nullptr);
  GRAFT_ASSERT(dw && dw->depthwise() && in.we->dim(1) == xs[1]);
  ExpandShape s{{plane_of(*dw), xs[0], ce, dw->w[3] * dw->w[4]}, xs[1], band_rows};
  const Plane& p = s.k.p;
  if (s.band_rows <= 0) {
    // Output rows whose band of E (input rows, all channels) fits in about
    // half of L2, beside the step's other data.
    const int64_t row_bytes = ce * p.w * int64_t{sizeof(float)};
    s.band_rows = std::max<int64_t>(1, ((int64_t{1} << 20) / row_bytes - p.kh) / p.sh + 1);
  }
  NormDepthwiseStatistics st{expanded_statistics(s, in), empty_statistics(ce)};
  convolve_expanded(f, s, in, st.before, y);
  // The second normalisation, on y in place, channel by channel (a channel's
  // planes, all images, are read twice from L2).
  const int64_t out_size = p.out_size();
  float* py = y.data<float>();
  const NormDepthwiseInputs& m = in.middle;
#pragma omp parallel for num_threads(loop_threads(y.numel())) schedule(static)
  for (int64_t c = 0; c < ce; ++c) {
    channel_statistics(py + s.k.out_at(0, c), s.k.n, ce * out_size, out_size, c, st.after);
    const Affine f2 = affine_of(st.after, c, data(m.scale2), data(m.shift2), f.after.epsilon);
    for (int64_t i = 0; i < s.k.n; ++i)
      normalize_plane(py + s.k.out_at(i, c), py + s.k.out_at(i, c), out_size, f2, f.after.lo,
                      f.after.hi);
  }
  update_running(f.before, st.before, s.k.n * p.size(), mean1, var1);
  update_running(f.after, st.after, s.k.n * out_size, mean2, var2);
  count_served();
  return st;
}

}  // namespace graft::backend
