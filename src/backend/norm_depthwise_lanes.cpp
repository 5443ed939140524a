// The fused normalise-depthwise-normalise step on small planes, sixteen
// channels side by side (norm_depthwise_lanes.h).
//
// A 7x7 plane is 49 floats: plane by plane (norm_depthwise.cpp), each pass
// over a plane spends more on setting up its rows, their ends and its sums
// than on the values. Here a block of sixteen channels of each image is
// turned channels-last (one vector holds a pixel's sixteen channels; the
// turn is a transpose in registers, none for a value the plan already
// stores channels-last), every loop runs whole vectors with no
// row ends, and the block's tensors (n x 196 x 16 floats each at most, for
// a 14x14 input) stay in L2 from the first pass to the last.
// The sums are those of the plane form: float within an image, double
// across images, shifted by the channel's first value (norm_planes.h).
#include "backend/norm_depthwise_lanes.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "backend/loops.h"

// The helpers that take or return a vector are always inlined: GCC's
// warning that such a signature's ABI differs without AVX-512 does not
// apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace graft::backend {

namespace {

// Sixteen floats; no alignment assumed, so that a vector made by code
// compiled for the baseline (aligned to 16 there) may be handed to the
// AVX-512 clones (the tiles themselves are 64-byte aligned); read as floats
// too, lane by lane.
typedef float Lanes __attribute__((vector_size(64), aligned(4), may_alias));
typedef int Indices __attribute__((vector_size(64)));
constexpr int kLanes = 16;

// Room for n vectors, 64-byte aligned; what it held is not kept on growing.
class Tile {
 public:
  Lanes* data() { return static_cast<Lanes*>(data_.get()); }
  const Lanes* data() const { return static_cast<const Lanes*>(data_.get()); }
  Lanes& operator[](int64_t i) { return data()[i]; }
  void resize(int64_t n) {
    if (n <= size_) return;
    data_.reset(std::aligned_alloc(64, size_t(n) * sizeof(Lanes)));
    if (!data_) throw std::bad_alloc();
    size_ = n;
  }

 private:
  std::unique_ptr<void, decltype(&std::free)> data_{nullptr, &std::free};
  int64_t size_ = 0;
};

#define GRAFT_INLINE inline __attribute__((always_inline))

GRAFT_INLINE Lanes splat(float v) { return Lanes{} + v; }
GRAFT_INLINE Lanes load(const float* p) {
  Lanes v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
GRAFT_INLINE void store(float* p, Lanes v) { __builtin_memcpy(p, &v, sizeof v); }
// One round of the transpose: rows i and i + S (bit S of i clear) swap
// their off-diagonal S x S blocks.
template <int S>
GRAFT_INLINE void swap_blocks(Lanes* r, Indices lo, Indices hi) {
  for (int i = 0; i < kLanes; ++i)
    if (!(i & S)) {
      const Lanes a = r[i], b = r[i + S];
      r[i] = __builtin_shuffle(a, b, lo);
      r[i + S] = __builtin_shuffle(a, b, hi);
    }
}

// r[i][j] becomes r[j][i]: blocks of 8 swapped, then of 4, 2 and 1.
GRAFT_INLINE void transpose(Lanes* r) {
  swap_blocks<8>(r, Indices{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
                 Indices{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31});
  swap_blocks<4>(r, Indices{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
                 Indices{4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31});
  swap_blocks<2>(r, Indices{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
                 Indices{2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31});
  swap_blocks<1>(r, Indices{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
                 Indices{1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31});
}

// The channels-last tile t (`size` pixels) of `count` consecutive planes
// of `size` floats at x; lanes from `count` on are zero. A plane's last
// sixteen pixels or fewer are read as a whole vector where the planes
// after it hold the rest (their values turn into rows of r left out of t),
// else value by value, not through a buffer (a call to memset and one to
// memmove a plane): a 576-channel 14x14-to-7x7 block at batch 32, forward
// and backward, 0.95x (20 alternating pairs, twice).
GRAFT_PLANE_LOOP void gather(const float* x, int64_t size, int count, Lanes* t) {
  Lanes r[kLanes];
  for (int64_t j = 0; j < size; j += kLanes) {
    const int64_t m = std::min<int64_t>(kLanes, size - j);
    for (int l = 0; l < kLanes; ++l) {
      if (l < count && l * size + j + kLanes <= count * size) {
        r[l] = load(x + l * size + j);
      } else {
        r[l] = Lanes{};
        for (int64_t q = 0; l < count && q < m; ++q) r[l][q] = x[l * size + j + q];
      }
    }
    transpose(r);
    for (int64_t q = 0; q < m; ++q) t[j + q] = r[q];
  }
}

// The inverse: `count` planes of `size` floats at y from the tile.
GRAFT_PLANE_LOOP void scatter(const Lanes* t, int64_t size, int count, float* y) {
  Lanes r[kLanes];
  for (int64_t j = 0; j < size; j += kLanes) {
    const int64_t m = std::min<int64_t>(kLanes, size - j);
    for (int64_t q = 0; q < kLanes; ++q) r[q] = q < m ? t[j + q] : Lanes{};
    transpose(r);
    for (int l = 0; l < count; ++l) {
      if (m == kLanes)
        store(y + l * size + j, r[l]);
      else
        for (int64_t q = 0; q < m; ++q) y[l * size + j + q] = r[l][q];
    }
  }
}

// A block's normalisation, one channel per lane (Affine of norm_planes.h),
// and its ChannelGradient (dx = q * (x - mean) + b * g + r). The
// element-wise loops below index these lane by lane in `omp simd` loops of
// sixteen: GCC 12 compiles the vector extension's comparisons and ?: lane
// by lane, but vectorizes these loops with mask registers.
struct LaneAffine {
  alignas(64) float k[kLanes], centre[kLanes], a[kLanes], shift[kLanes];
};
struct LaneGradient {
  alignas(64) float q[kLanes], b[kLanes], r[kLanes];
};

// x - mean, f(x) and the activation's gradient for lane l.
GRAFT_INLINE float centred(const LaneAffine& f, int l, float x) {
  return (x - f.k[l]) - f.centre[l];
}
GRAFT_INLINE float normalized(const LaneAffine& f, int l, float x) {
  return f.a[l] * centred(f, l, x) + f.shift[l];
}
GRAFT_INLINE float clamped(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

// The channels [c0, c0 + count) side by side.
struct Block {
  int64_t c0;
  int count;
};

LaneAffine lane_affine(const BatchStatistics& st, const Block& b, const float* scale,
                       const float* shift, double epsilon) {
  LaneAffine f{};  // lanes past count: zero
  for (int l = 0; l < b.count; ++l) {
    const Affine a = affine_of(st, b.c0 + l, scale, shift, epsilon);
    f.k[l] = a.k, f.centre[l] = a.centre, f.a[l] = a.a, f.shift[l] = a.shift;
  }
  return f;
}

// Per lane double sums, added image by image.
struct LaneSums {
  double first[kLanes] = {}, second[kLanes] = {};
  void add(Lanes s1, Lanes s2) {
    for (int l = 0; l < kLanes; ++l) first[l] += s1[l], second[l] += s2[l];
  }
  PlaneSums of(int l) const { return {first[l], second[l]}; }
};

// The block's batch statistics from n tiles of `size` pixels, as
// channel_statistics computes them: sums of x - k, k the channel's first
// value.
GRAFT_PLANE_LOOP void lane_statistics(const Lanes* t, int64_t n, int64_t size, const Block& b,
                                      BatchStatistics& st) {
  const Lanes k = t[0];
  LaneSums sums;
  for (int64_t i = 0; i < n; ++i) {
    Lanes s1{}, s2{};
    for (int64_t j = 0; j < size; ++j) {
      const Lanes d = t[i * size + j] - k;
      s1 += d;
      s2 += d * d;
    }
    sums.add(s1, s2);
  }
  for (int l = 0; l < b.count; ++l)
    set_statistics(st, b.c0 + l, k[l], sums.of(l), static_cast<double>(n * size));
}

// v = clamp(f(v), lo, hi).
GRAFT_PLANE_LOOP void normalize(Lanes* v, int64_t n, const LaneAffine& affine, float lo, float hi) {
  // A copy that no store below may alias, so kept in registers: read
  // through the reference, the constants were loaded again for every pixel
  // (a 960-channel 7x7 block at batch 32, forward and backward, 5.1-5.6 ->
  // 4.2-4.4 ms; 576 channels from 14x14, 4.9-7.3 -> 4.4-6.6 ms).
  const LaneAffine f = affine;
  float* e = reinterpret_cast<float*>(v);
  for (int64_t j = 0; j < n; ++j, e += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) e[l] = clamped(normalized(f, l, e[l]), lo, hi);
}

// The padded input: the window's rows and columns, (oh - 1) * sh + kh by
// (ow - 1) * sw + kw, with the input at (pt, pl) and zeros around.
struct Window {
  int64_t h, w;
  explicit Window(const Plane& p) : h((p.oh - 1) * p.sh + p.kh), w((p.ow - 1) * p.sw + p.kw) {}
  int64_t size() const { return h * w; }
  // Where input pixel (y, x) lies in the window, or -1 when no tap reads it.
  int64_t at(const Plane& p, int64_t y, int64_t x) const {
    const int64_t r = y + p.pt, c = x + p.pl;
    return r < h && c < w ? r * w + c : -1;
  }
};

// One image's padded input: clamp(f(x), lo, hi), zero around.
GRAFT_PLANE_LOOP void pad(const Plane& p, const Window& win, const Lanes* x,
                          const LaneAffine& affine, float lo, float hi, Lanes* out) {
  const LaneAffine f = affine;  // as in normalize
  std::fill_n(out, win.size(), Lanes{});
  for (int64_t y = 0; y < p.h; ++y)
    for (int64_t c = 0; c < p.w; ++c) {
      const int64_t at = win.at(p, y, c);
      if (at < 0) continue;
      const float* in = reinterpret_cast<const float*>(x + y * p.w + c);
      float* to = reinterpret_cast<float*>(out + at);
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) to[l] = clamped(normalized(f, l, in[l]), lo, hi);
    }
}

// The window loops below with the kernel's size known when compiled (KH x
// KW: its taps and sums held in locals, the loops unrolled) or read from
// the plane (0 x 0). MobileNetV2's 3x3 kernels take the first: with taps
// and sums read and written through memory each time (the vectors may
// alias), the three loops took a third of a 7x7 block's time. Measured at
// batch 32, forward and backward, 20 alternating pairs: 960 channels
// 9.4 -> 7.5-7.8 ms, 576 channels 5.5 -> 4.3 ms.
template <int KH, int KW>
struct Taps {
  static constexpr int kMax = KH * KW > 0 ? KH * KW : 1;
  int64_t kh, kw;
  explicit Taps(const Plane& p) : kh(KH ? KH : p.kh), kw(KW ? KW : p.kw) {}
};

// y = b + the convolution of the padded input with kernel w (one vector
// per tap).
template <int KH, int KW>
GRAFT_INLINE void convolve_with(const Plane& p, const Window& win, const Lanes* in, const Lanes* w,
                                const Lanes& b, Lanes* y) {
  const Taps<KH, KW> k(p);
  Lanes taps[Taps<KH, KW>::kMax];
  if (KH) std::copy_n(w, Taps<KH, KW>::kMax, taps);
  const Lanes* kernel = KH ? taps : w;
  for (int64_t oy = 0; oy < p.oh; ++oy)
    for (int64_t ox = 0; ox < p.ow; ++ox) {
      const Lanes* at = in + oy * p.sh * win.w + ox * p.sw;
      Lanes acc = b;
      for (int64_t i = 0; i < k.kh; ++i)
        for (int64_t j = 0; j < k.kw; ++j) acc += at[i * win.w + j] * kernel[i * k.kw + j];
      y[oy * p.ow + ox] = acc;
    }
}
GRAFT_PLANE_LOOP void convolve(const Plane& p, const Window& win, const Lanes* in, const Lanes* w,
                               const Lanes& b, Lanes* y) {
  if (p.kh == 3 && p.kw == 3) return convolve_with<3, 3>(p, win, in, w, b, y);
  convolve_with<0, 0>(p, win, in, w, b, y);
}

// dw[t] += the sum of d times the padded input under tap t; db += the sum
// of d.
template <int KH, int KW>
GRAFT_INLINE void weight_sums_with(const Plane& p, const Window& win, const Lanes* in,
                                   const Lanes* d, Lanes* dw, Lanes& db) {
  const Taps<KH, KW> k(p);
  Lanes sums[Taps<KH, KW>::kMax];
  if (KH) std::copy_n(dw, Taps<KH, KW>::kMax, sums);
  Lanes* acc = KH ? sums : dw;
  Lanes bias = db;
  for (int64_t oy = 0; oy < p.oh; ++oy)
    for (int64_t ox = 0; ox < p.ow; ++ox) {
      const Lanes* at = in + oy * p.sh * win.w + ox * p.sw;
      const Lanes g = d[oy * p.ow + ox];
      bias += g;
      for (int64_t i = 0; i < k.kh; ++i)
        for (int64_t j = 0; j < k.kw; ++j) acc[i * k.kw + j] += g * at[i * win.w + j];
    }
  if (KH) std::copy_n(sums, Taps<KH, KW>::kMax, dw);
  db = bias;
}
GRAFT_PLANE_LOOP void weight_sums(const Plane& p, const Window& win, const Lanes* in,
                                  const Lanes* d, Lanes* dw, Lanes& db) {
  if (p.kh == 3 && p.kw == 3) return weight_sums_with<3, 3>(p, win, in, d, dw, db);
  weight_sums_with<0, 0>(p, win, in, d, dw, db);
}

// The data gradient: each output's d spread back over its window (into
// `window`, zeroed first), then the input's pixels cut out of it.
template <int KH, int KW>
GRAFT_INLINE void spread_with(const Plane& p, const Window& win, const Lanes* d, const Lanes* w,
                              Lanes* window, Lanes* dx) {
  const Taps<KH, KW> k(p);
  Lanes taps[Taps<KH, KW>::kMax];
  if (KH) std::copy_n(w, Taps<KH, KW>::kMax, taps);
  const Lanes* kernel = KH ? taps : w;
  std::fill_n(window, win.size(), Lanes{});
  for (int64_t oy = 0; oy < p.oh; ++oy)
    for (int64_t ox = 0; ox < p.ow; ++ox) {
      Lanes* at = window + oy * p.sh * win.w + ox * p.sw;
      const Lanes g = d[oy * p.ow + ox];
      for (int64_t i = 0; i < k.kh; ++i)
        for (int64_t j = 0; j < k.kw; ++j) at[i * win.w + j] += g * kernel[i * k.kw + j];
    }
  for (int64_t y = 0; y < p.h; ++y)
    for (int64_t c = 0; c < p.w; ++c) {
      const int64_t at = win.at(p, y, c);
      dx[y * p.w + c] = at >= 0 ? window[at] : Lanes{};
    }
}
GRAFT_PLANE_LOOP void spread(const Plane& p, const Window& win, const Lanes* d, const Lanes* w,
                             Lanes* window, Lanes* dx) {
  if (p.kh == 3 && p.kw == 3) return spread_with<3, 3>(p, win, d, w, window, dx);
  spread_with<0, 0>(p, win, d, w, window, dx);
}

// Sums of g and g * (x - mean), g = passed(dy, f(x)): gradient_sums.
GRAFT_PLANE_LOOP void gradient_sums(const Lanes* x, const Lanes* dy, int64_t size,
                                    const LaneAffine& f, float lo, float hi, LaneSums& sums) {
  alignas(64) float s1[kLanes] = {}, s2[kLanes] = {};
  const float* xe = reinterpret_cast<const float*>(x);
  const float* de = reinterpret_cast<const float*>(dy);
  for (int64_t j = 0; j < size; ++j, xe += kLanes, de += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const float g = passed(de[l], normalized(f, l, xe[l]), lo, hi);
      s1[l] += g;
      s2[l] += g * centred(f, l, xe[l]);
    }
  sums.add(load(s1), load(s2));
}

// dx = q * (x - mean) + b * passed(dy, f(x)) + r: gradient_plane.
GRAFT_PLANE_LOOP void gradient(const Lanes* x, const Lanes* dy, Lanes* dx, int64_t size,
                               const LaneAffine& affine, float lo, float hi,
                               const LaneGradient& channel_gradient) {
  const LaneAffine f = affine;  // as in normalize
  const LaneGradient g = channel_gradient;
  const float* xe = reinterpret_cast<const float*>(x);
  const float* de = reinterpret_cast<const float*>(dy);
  float* out = reinterpret_cast<float*>(dx);
  for (int64_t j = 0; j < size; ++j, xe += kLanes, de += kLanes, out += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l)
      out[l] = g.q[l] * centred(f, l, xe[l]) +
               g.b[l] * passed(de[l], normalized(f, l, xe[l]), lo, hi) + g.r[l];
}

// The block's kernel into w (one vector per tap); returns its bias.
Lanes load_kernel(const NormDepthwiseInputs& in, const NormDepthwiseShape& k, const Block& blk,
                  Tile& w) {
  w.resize(k.taps);
  std::fill_n(w.data(), k.taps, Lanes{});
  Lanes b{};
  const float* weights = in.w->data<float>();
  for (int l = 0; l < blk.count; ++l) {
    for (int64_t t = 0; t < k.taps; ++t) w[t][l] = weights[(blk.c0 + l) * k.taps + t];
    if (in.b) b[l] = in.b->data<float>()[blk.c0 + l];
  }
  return b;
}

// A thread's tiles, kept from block to block.
struct Tiles {
  Tile x, x2, dy, d1, window, d2, dw, kernel;
};

Block block_at(const NormDepthwiseShape& k, int64_t index) {
  const int64_t c0 = index * kLanes;
  return {c0, static_cast<int>(std::min<int64_t>(kLanes, k.channels - c0))};
}

int64_t blocks_of(const NormDepthwiseShape& k) { return (k.channels + kLanes - 1) / kLanes; }

// gather and scatter for a value stored channels-last (ConvLayout): pixel
// j's channels of the block lie together at x + j * channels, no turn needed.
GRAFT_PLANE_LOOP void gather_channels_last(const float* x, int64_t size, int64_t channels,
                                           int count, Lanes* t) {
  for (int64_t j = 0; j < size; ++j) {
    if (count == kLanes) {
      t[j] = load(x + j * channels);
      continue;
    }
    t[j] = Lanes{};
    for (int l = 0; l < count; ++l) t[j][l] = x[j * channels + l];
  }
}
GRAFT_PLANE_LOOP void scatter_channels_last(const Lanes* t, int64_t size, int64_t channels,
                                            int count, float* y) {
  for (int64_t j = 0; j < size; ++j) {
    if (count == kLanes) {
      store(y + j * channels, t[j]);
      continue;
    }
    for (int l = 0; l < count; ++l) y[j * channels + l] = t[j][l];
  }
}

// Gathers the block's tiles of every image (`size` pixels each) from x,
// stored plain or channels-last.
void gather_all(const float* x, const NormDepthwiseShape& k, const Block& b, int64_t size,
                bool channels_last, Tile& t) {
  t.resize(k.n * size);
  for (int64_t i = 0; i < k.n; ++i)
    if (channels_last)
      gather_channels_last(x + i * size * k.channels + b.c0, size, k.channels, b.count,
                           t.data() + i * size);
    else
      gather(x + (i * k.channels + b.c0) * size, size, b.count, t.data() + i * size);
}

// Image i's tile t (`size` pixels) into y, stored plain or channels-last.
void scatter_image(const Lanes* t, const NormDepthwiseShape& k, const Block& b, int64_t i,
                   int64_t size, bool channels_last, float* y) {
  if (channels_last)
    scatter_channels_last(t, size, k.channels, b.count, y + i * size * k.channels + b.c0);
  else
    scatter(t, size, b.count, y + (i * k.channels + b.c0) * size);
}

// x2: the convolution of every image's normalised input.
void convolve_all(const NormDepthwise& f, const NormDepthwiseShape& k, const Lanes& bias,
                  const LaneAffine& f1, Tiles& t) {
  const Window win(k.p);
  const int64_t size = k.p.size(), out_size = k.p.out_size();
  t.window.resize(win.size());
  t.x2.resize(k.n * out_size);
  for (int64_t i = 0; i < k.n; ++i) {
    pad(k.p, win, t.x.data() + i * size, f1, f.before.lo, f.before.hi, t.window.data());
    convolve(k.p, win, t.window.data(), t.kernel.data(), bias, t.x2.data() + i * out_size);
  }
}


// The block's ChannelGradient, its dscale and dshift written.
LaneGradient lane_gradient(const BatchStatistics& st, const Block& b, double count,
                           const float* scale, double epsilon, const LaneSums& sums, Tensor* dscale,
                           Tensor* dshift) {
  LaneGradient g{};
  for (int l = 0; l < b.count; ++l) {
    const int64_t c = b.c0 + l;
    const ChannelGradient cg = channel_gradient(st, c, count, scale[c], epsilon, sums.of(l));
    g.q[l] = cg.q, g.b[l] = cg.b, g.r[l] = cg.r;
    if (dscale) dscale->data<float>()[c] = static_cast<float>(cg.dscale);
    if (dshift) dshift->data<float>()[c] = static_cast<float>(cg.dshift);
  }
  return g;
}

void forward_block(const NormDepthwise& f, const NormDepthwiseInputs& in,
                   const NormDepthwiseShape& k, const Block& b, NormDepthwiseStatistics& st,
                   Tensor& y, Tiles& t) {
  const int64_t size = k.p.size(), out_size = k.p.out_size();
  gather_all(in.x->data<float>(), k, b, size, f.x_channels_last, t.x);
  lane_statistics(t.x.data(), k.n, size, b, st.before);
  const LaneAffine f1 =
      lane_affine(st.before, b, data(in.scale1), data(in.shift1), f.before.epsilon);
  convolve_all(f, k, load_kernel(in, k, b, t.kernel), f1, t);
  lane_statistics(t.x2.data(), k.n, out_size, b, st.after);
  const LaneAffine f2 = lane_affine(st.after, b, data(in.scale2), data(in.shift2), f.after.epsilon);
  normalize(t.x2.data(), k.n * out_size, f2, f.after.lo, f.after.hi);
  for (int64_t i = 0; i < k.n; ++i)
    scatter_image(t.x2.data() + i * out_size, k, b, i, out_size, f.y_channels_last,
                  y.data<float>());
}

void backward_block(const NormDepthwise& f, const BatchStatistics& before,
                    const BatchStatistics& after, const NormDepthwiseInputs& in,
                    const NormDepthwiseShape& k, const Block& b, const Tensor& dy,
                    const NormDepthwiseGradients& grads, Tiles& t) {
  const Window win(k.p);
  const int64_t size = k.p.size(), out_size = k.p.out_size();
  const Lanes bias = load_kernel(in, k, b, t.kernel);
  const LaneAffine f1 = lane_affine(before, b, data(in.scale1), data(in.shift1), f.before.epsilon);
  const LaneAffine f2 = lane_affine(after, b, data(in.scale2), data(in.shift2), f.after.epsilon);
  gather_all(in.x->data<float>(), k, b, size, f.x_channels_last, t.x);
  gather_all(dy.data<float>(), k, b, out_size, f.y_channels_last, t.dy);
  convolve_all(f, k, bias, f1, t);
  LaneSums sums2;
  for (int64_t i = 0; i < k.n; ++i)
    gradient_sums(t.x2.data() + i * out_size, t.dy.data() + i * out_size, out_size, f2, f.after.lo,
                  f.after.hi, sums2);
  const LaneGradient g2 = lane_gradient(after, b, double(k.n * out_size), data(in.scale2),
                                        f.after.epsilon, sums2, grads.dscale2, grads.dshift2);
  // Per image: the gradient reaching the convolution's output (d2), its
  // weights' and input's gradients, and the first normalisation's sums.
  const bool wants_dy1 = grads.dx || grads.dscale1 || grads.dshift1;
  std::vector<double> dw(k.taps * kLanes, 0.0), db(kLanes, 0.0);
  t.dw.resize(k.taps);
  LaneSums sums1;
  t.d2.resize(out_size);
  t.d1.resize(k.n * size);
  for (int64_t i = 0; i < k.n; ++i) {
    gradient(t.x2.data() + i * out_size, t.dy.data() + i * out_size, t.d2.data(), out_size, f2,
             f.after.lo, f.after.hi, g2);
    if (grads.dw || grads.db) {
      std::fill_n(t.dw.data(), k.taps, Lanes{});
      Lanes db_image{};
      pad(k.p, win, t.x.data() + i * size, f1, f.before.lo, f.before.hi, t.window.data());
      weight_sums(k.p, win, t.window.data(), t.d2.data(), t.dw.data(), db_image);
      for (int64_t tap = 0; tap < k.taps; ++tap)
        for (int l = 0; l < kLanes; ++l) dw[tap * kLanes + l] += t.dw[tap][l];
      for (int l = 0; l < kLanes; ++l) db[l] += db_image[l];
    }
    if (!wants_dy1) continue;
    Lanes* d1 = t.d1.data() + i * size;
    spread(k.p, win, t.d2.data(), t.kernel.data(), t.window.data(), d1);
    gradient_sums(t.x.data() + i * size, d1, size, f1, f.before.lo, f.before.hi, sums1);
  }
  for (int l = 0; l < b.count; ++l) {
    const int64_t c = b.c0 + l;
    if (grads.dw)
      for (int64_t tap = 0; tap < k.taps; ++tap)
        grads.dw->data<float>()[c * k.taps + tap] = static_cast<float>(dw[tap * kLanes + l]);
    if (grads.db) grads.db->data<float>()[c] = static_cast<float>(db[l]);
  }
  if (!wants_dy1) return;
  const LaneGradient g1 = lane_gradient(before, b, double(k.n * size), data(in.scale1),
                                        f.before.epsilon, sums1, grads.dscale1, grads.dshift1);
  if (!grads.dx) return;
  for (int64_t i = 0; i < k.n; ++i) {
    Lanes* d1 = t.d1.data() + i * size;
    gradient(t.x.data() + i * size, d1, d1, size, f1, f.before.lo, f.before.hi, g1);
    scatter_image(d1, k, b, i, size, f.x_channels_last, grads.dx->data<float>());
  }
}

}  // namespace

// Measured on MobileNetV2's blocks at batch 32, forward and backward: 7x7
// 960 channels 15 -> 7 ms, 14x14 to 7x7 (stride 2) 11 -> 9 ms; but 14x14
// 576 channels 11 -> 15 ms, where gathering the block from memory costs
// more than the plane form's set-up saves.
bool runs_in_lanes(const Plane& p) { return p.size() <= 14 * 14 && p.out_size() <= 7 * 7; }

void lanes_forward(const NormDepthwise& f, const NormDepthwiseInputs& in,
                   const NormDepthwiseShape& k, NormDepthwiseStatistics& st, Tensor& y) {
#pragma omp parallel for num_threads(loop_threads(in.x->numel())) schedule(static)
  for (int64_t index = 0; index < blocks_of(k); ++index) {
    thread_local Tiles t;
    forward_block(f, in, k, block_at(k, index), st, y, t);
  }
}

void lanes_backward(const NormDepthwise& f, const BatchStatistics& before,
                    const BatchStatistics& after, const NormDepthwiseInputs& in,
                    const NormDepthwiseShape& k, const Tensor& dy,
                    const NormDepthwiseGradients& grads) {
#pragma omp parallel for num_threads(loop_threads(in.x->numel())) schedule(static)
  for (int64_t index = 0; index < blocks_of(k); ++index) {
    thread_local Tiles t;
    backward_block(f, before, after, in, k, block_at(k, index), dy, grads, t);
  }
}

}  // namespace graft::backend
