// Depthwise 2-D convolutions (one input and one output channel per group,
// no dilation) directly on graft's NCHW layout: forward, backward data and
// backward weights with the bias gradient, as loops over each channel's
// plane, parallel over planes (channels for the weight gradient).
//
// oneDNN's fast depthwise kernels want channel-blocked activations; from
// NCHW that is a reorder in and out of every call, six per layer in a
// training step. Measured on MobileNetV2's W3 step (batch 32): the reorders
// took 381 ms and the kernels 195 ms of a 1165 ms step. A plane of these
// layers fits in L2, so one pass over it in place is what the memory allows.
//
// The 3x3 windows run on a padded copy of the input (Padded); on machines
// with AVX-512 the copy, the forward, the weight gradient and the stride-2
// data gradient run in intrinsics (depthwise_avx512.cpp), elsewhere in the
// GCC vector loops below. There, planes up to 112 wide at strides 1 and 2
// skip the copy (avx512::fits_unpadded).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/depthwise_avx512.h"
#include "backend/depthwise_planes.h"
#include "backend/loops.h"

namespace graft::backend {

namespace {

// Where kernel column j of output column 0 reads in input row `in` (output
// column q reads q * sw further on; it may lie left of the row, for the
// columns before first(j)).
int64_t column_offset(const Plane& p, int64_t in, int64_t j) { return in * p.w - p.pl + j; }

// Each plane function is one target_clones function with its row loops
// inline: a call per row and tap cost more than the row's arithmetic.

// Any window: y = bias + sum over the window of w * x, one output row at a
// time, one tap at a time.
GRAFT_PLANE_LOOP void forward_plane_any(const Plane& p, const float* __restrict x,
                                        const float* __restrict w, float b, float* __restrict y) {
  for (int64_t o = 0; o < p.oh; ++o) {
    float* row = y + o * p.ow;
    for (int64_t q = 0; q < p.ow; ++q) row[q] = b;
    for (int64_t i = 0; i < p.kh; ++i) {
      const int64_t in = o * p.sh - p.pt + i;
      if (in < 0 || in >= p.h) continue;
      for (int64_t j = 0; j < p.kw; ++j) {
        const float a = w[i * p.kw + j];
        const int64_t first = p.first(j), last = p.last(j);
        const float* src = x + column_offset(p, in, j);
        if (p.sw == 1) {
#pragma omp simd
          for (int64_t q = first; q < last; ++q) row[q] += a * src[q];
        } else {
#pragma omp simd
          for (int64_t q = first; q < last; ++q) row[q] += a * src[q * p.sw];
        }
      }
    }
  }
}

// --- 3x3 windows with column stride 1 or 2, on a zero-padded copy ---
// Copying the plane (it is in cache) into a buffer with zero borders and
// rows rounded up to whole blocks of sixteen floats sends every output
// through the vector loop: no border cases, no scalar tails. With column
// stride 2 each padded row is also split into its even and its odd columns,
// so that every tap reads sixteen consecutive floats again (a 96x112x112
// layer at batch 32: 19 ms forward with strided loads, 14 ms this way).

// Sixteen floats (one AVX-512 register; emulated by the baseline clone).
typedef float Lanes __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;
inline void load(Lanes& v, const float* p) { std::memcpy(&v, p, sizeof v); }
// v to y[at...] in a plane of `size` floats written in increasing order: a
// whole vector where the plane has room (lanes past the row's end land on
// the next row, written after), else the lanes that fit one by one (a lane
// loop or a memcpy of variable length goes through the stack, which took
// 60% of the loop's time when every row's tail went that way).
inline void store(float* y, int64_t at, int64_t size, const Lanes& v) {
  if (at + kLanes <= size) {
    std::memcpy(y + at, &v, sizeof v);
    return;
  }
  for (int64_t l = 0; l < size - at; ++l) y[at + l] = v[l];
}
int64_t round_up(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

bool fits_3x3(const Plane& p) { return p.kh == 3 && p.kw == 3 && (p.sw == 1 || p.sw == 2); }

// dst (stride floats) = row src (w floats, or map(src); nullptr: a row of
// padding) moved right by `left` (which may be negative), zero elsewhere.
GRAFT_PLANE_LOOP void pad_row(const float* src, int64_t w, int64_t left, int64_t stride,
                              const InputMap* map, float* dst) {
  const int64_t c0 = std::max<int64_t>(0, -left), c1 = std::min(w, stride - left);
  if (!src || c1 <= c0) {
    std::fill_n(dst, stride, 0.0f);
    return;
  }
  std::fill_n(dst, c0 + left, 0.0f);
  std::fill_n(dst + c1 + left, stride - (c1 + left), 0.0f);
  src += c0;
  dst += c0 + left;
  if (!map) {
    std::memcpy(dst, src, (c1 - c0) * sizeof(float));
    return;
  }
  const InputMap m = *map;
#pragma omp simd
  for (int64_t k = 0; k < c1 - c0; ++k) dst[k] = std::min(std::max(m.f(src[k]), m.lo), m.hi);
}

// The row of x (h rows of w) that padded row r shows, moved down by `top`:
// nullptr for padding.
const float* source_row(const float* x, int64_t h, int64_t w, int64_t top, int64_t r) {
  return r - top >= 0 && r - top < h ? x + (r - top) * w : nullptr;
}

// out (rows x stride) = x (h x w), or map(x), moved down by `top` and right
// by `left` (either may be negative), zero elsewhere.
void pad_into(const float* x, int64_t h, int64_t w, int64_t top, int64_t left, int64_t rows,
              int64_t stride, const InputMap* map, float* out) {
  for (int64_t r = 0; r < rows; ++r)
    pad_row(source_row(x, h, w, top, r), w, left, stride, map, out + r * stride);
}
void pad_into(const float* x, int64_t h, int64_t w, int64_t top, int64_t left, int64_t rows,
              int64_t stride, const InputMap* map, std::vector<float>& out) {
  out.resize(rows * stride);
  pad_into(x, h, w, top, left, rows, stride, map, out.data());
}

// The buffer for plane p's input: the rows its outputs read, each as
// `sw` parts (all columns, or even then odd ones) of `part` floats, the
// columns the outputs read rounded up to whole vectors. The kernels' loads
// of the last vector's neighbours run on into the next row, or past the
// last into kLanes zeros after the buffer (padded_input), and reach only
// columns past the outputs' (as wide as the outputs, 14x14 planes padded
// half as much: 14 -> 10 cycles per sixteen values).
struct Padded {
  int64_t rows, part, sw;
  int64_t tap[9];  // where tap (i, j) of output row 0, column 0 reads
  int64_t row;     // and how much further on output row o + 1 reads
  explicit Padded(const Plane& p)
      : rows(p.sh * (p.oh - 1) + 3),
        part(round_up(p.ow + 2 / p.sw)),
        sw(p.sw),
        row(p.sh * sw * part) {
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j) tap[i * 3 + j] = i * sw * part + (j % sw) * part + j / sw;
  }
  int64_t size() const { return rows * sw * part; }
};

typedef int Indices __attribute__((vector_size(64)));

// out = plane p's input x (or map(x)) in the layout of Padded (wide: one
// padded row, scratch).
GRAFT_PLANE_LOOP void pad_plane(const Plane& p, const Padded& in, const float* x,
                                const InputMap* map, float* out, std::vector<float>& wide) {
  if (in.sw == 1) return pad_into(x, p.h, p.w, p.pt, p.pl, in.rows, in.part, map, out);
  const int64_t row = 2 * in.part;
  wide.resize(row);
  const Indices even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const Indices odd = even + 1;
  Lanes a, b, v;
  for (int64_t r = 0; r < in.rows; ++r) {
    pad_row(source_row(x, p.h, p.w, p.pt, r), p.w, p.pl, row, map, wide.data());
    for (int64_t m = 0; m < in.part; m += kLanes) {
      load(a, wide.data() + 2 * m);
      load(b, wide.data() + 2 * m + kLanes);
      v = __builtin_shuffle(a, b, even);
      std::memcpy(out + r * row + m, &v, sizeof v);
      v = __builtin_shuffle(a, b, odd);
      std::memcpy(out + r * row + in.part + m, &v, sizeof v);
    }
  }
}

// Output rows o .. o + R - 1 (those below the plane are not stored), B
// blocks of sixteen columns from qb: R * B sums built side by side, since
// one alone is a chain of nine dependent multiply-adds.
template <int R, int B>
inline void tile_3x3(const Plane& p, const Padded& in, const float* padded, const Lanes* taps,
                     float bias, float* y, int64_t o, int64_t qb) {
  Lanes acc[R][B], v;
  const float* at[R];
  for (int r = 0; r < R; ++r) {
    at[r] = padded + std::min(o + r, p.oh - 1) * in.row + qb;
    for (int u = 0; u < B; ++u) acc[r][u] = bias + Lanes{};
  }
  for (int t = 0; t < 9; ++t)
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < B; ++u) {
        load(v, at[r] + in.tap[t] + u * kLanes);
        acc[r][u] += taps[t] * v;
      }
  for (int r = 0; r < R && o + r < p.oh; ++r)
    for (int u = 0; u < B; ++u)
      store(y, (o + r) * p.ow + qb + u * kLanes, p.out_size(), acc[r][u]);
}

// y = bias + the 3x3 window sums: four rows of one block of sixteen
// columns, two rows of two, or one row of four (then two, then one), by
// the width.
GRAFT_PLANE_LOOP void forward_3x3(const Plane& p, const float* src, const float* w, float b,
                                  float* y) {
  const Padded in(p);
  Lanes taps[9];
  for (int t = 0; t < 9; ++t) taps[t] = w[t] + Lanes{};
  const int64_t blocks = round_up(p.ow) / kLanes;
  if (blocks == 1) {
    for (int64_t o = 0; o < p.oh; o += 4) tile_3x3<4, 1>(p, in, src, taps, b, y, o, 0);
    return;
  }
  // Rows two at a time only when a tile spans the whole row: a row's last
  // vector runs on into the next row, which must be written after it.
  if (blocks == 2) {
    for (int64_t o = 0; o < p.oh; o += 2) tile_3x3<2, 2>(p, in, src, taps, b, y, o, 0);
    return;
  }
  for (int64_t o = 0; o < p.oh; ++o) {
    int64_t qb = 0;
    for (; qb + 4 * kLanes <= blocks * kLanes; qb += 4 * kLanes)
      tile_3x3<1, 4>(p, in, src, taps, b, y, o, qb);
    if (qb + 2 * kLanes <= blocks * kLanes) {
      tile_3x3<1, 2>(p, in, src, taps, b, y, o, qb);
      qb += 2 * kLanes;
    }
    if (qb < blocks * kLanes) tile_3x3<1, 1>(p, in, src, taps, b, y, o, qb);
  }
}

// dw[t] += sum of dy * x under tap t, db += sum of dy: sixteen columns at a
// time go down all rows with the nine sums in registers.
GRAFT_PLANE_LOOP void weights_3x3(const Plane& p, const float* padded_x, const float* dy,
                                  double* dw, double* db, std::vector<float>& padded_dy) {
  const Padded in(p);
  const int64_t SD = round_up(p.ow);
  pad_into(dy, p.oh, p.ow, 0, 0, p.oh, SD, nullptr, padded_dy);
  const float* g = padded_dy.data();
  if (db) {
    float bias = 0;
#pragma omp simd reduction(+ : bias)
    for (int64_t e = 0; e < p.oh * SD; ++e) bias += g[e];
    *db += bias;
  }
  for (int64_t qb = 0; qb < SD; qb += kLanes) {
    Lanes sums[9] = {}, gv, v;
    for (int64_t o = 0; o < p.oh; ++o) {
      load(gv, g + o * SD + qb);
      const float* at = padded_x + o * in.row + qb;
      for (int t = 0; t < 9; ++t) {
        load(v, at + in.tap[t]);
        sums[t] += gv * v;
      }
    }
    for (int t = 0; t < 9; ++t) {
      float s = 0;
      for (int64_t l = 0; l < kLanes; ++l) s += sums[t][l];
      dw[t] += s;
    }
  }
}

// dx of a 3x3 window at column stride 2 (any row stride) straight from dy,
// without spreading it: padded column P of dx row r (P = column + pl) gets,
// for each kernel row i that output row o = (r + pt - i) / sh reaches,
// w(i, 0) dy(o, P/2) + w(i, 2) dy(o, P/2 - 1) when P is even and
// w(i, 1) dy(o, (P-1)/2) when odd. So sixteen even and sixteen odd columns
// come from sixteen consecutive values of dy, and are interleaved.
GRAFT_PLANE_LOOP void backward_data_3x3_s2(const Plane& p, const float* dy, const float* w,
                                           float* dx, std::vector<float>& padded_dy,
                                           std::vector<float>& row) {
  const int64_t part = round_up(p.ow + 1) + kLanes, stride = part + kLanes;
  pad_into(dy, p.oh, p.ow, 0, 1, p.oh, stride, nullptr, padded_dy);  // D(o, m + 1) = dy(o, m)
  row.resize(2 * part);
  const Indices low = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  const Indices high = low + 8;
  Lanes taps[9], d0, d1;
  for (int t = 0; t < 9; ++t) taps[t] = w[t] + Lanes{};
  for (int64_t r = 0; r < p.h; ++r) {
    const RowsReaching rows = rows_reaching(p, r);
    for (int64_t m = 0; m < part; m += kLanes) {
      Lanes even = {}, odd = {};
      for (int k = 0; k < rows.count; ++k) {
        const float* d = padded_dy.data() + rows.out_row[k] * stride;
        const int t = rows.tap_row[k];
        load(d0, d + m);
        load(d1, d + m + 1);
        even += taps[t] * d1 + taps[t + 2] * d0;
        odd += taps[t + 1] * d1;
      }
      const Lanes a = __builtin_shuffle(even, odd, low), b = __builtin_shuffle(even, odd, high);
      std::memcpy(row.data() + 2 * m, &a, sizeof a);
      std::memcpy(row.data() + 2 * m + kLanes, &b, sizeof b);
    }
    std::memcpy(dx + r * p.w, row.data() + p.pl, p.w * sizeof(float));
  }
}

// dx is the forward convolution, with unit strides and the kernel turned
// half way round, of dy spread out by the strides (zeros between), padded
// by k - 1 - pad: plane p's transposed plane, whose input is that spread dy.
Plane transposed(const Plane& p) {
  return {p.sh * (p.oh - 1) + 1, p.sw * (p.ow - 1) + 1, p.h, p.w, p.kh, p.kw, 1, 1,
          p.kh - 1 - p.pt, p.kw - 1 - p.pl};
}

// map(x) for the kernels that read x in place (mapped: scratch).
const float* mapped_plane(const Plane& p, const float* x, const InputMap* map,
                          std::vector<float>& mapped) {
  if (!map) return x;
  mapped.resize(p.size());
  normalize_plane(x, mapped.data(), p.size(), map->f, map->lo, map->hi, Store::kCached);
  return mapped.data();
}

}  // namespace

bool has_avx512() {
  // GRAFT_NO_AVX512=1 keeps the portable loops tested on machines with it.
  static const bool has = __builtin_cpu_supports("avx512f") && !std::getenv("GRAFT_NO_AVX512");
  return has;
}

namespace {

bool runs_avx512(const Padded& in) {
  return has_avx512() && in.sw * in.part <= avx512::kMaxPaddedRow;
}

// n floats in `storage` from a 64-byte boundary: the AVX-512 kernels' loads
// of the padded input are aligned.
float* aligned_buffer(std::vector<float>& storage, int64_t n) {
  storage.resize(n + kLanes);
  const auto at = reinterpret_cast<std::uintptr_t>(storage.data());
  return storage.data() + (-at / sizeof(float)) % kLanes;
}

// Plane p's input x (or map(x)) padded (scratch) in the layout of Padded.
const float* padded_input(const Plane& p, const Padded& in, const float* x, const InputMap* map,
                          std::vector<float>& scratch) {
  float* padded = aligned_buffer(scratch, in.size() + kLanes);
  std::fill_n(padded + in.size(), kLanes, 0.0f);
  if (runs_avx512(in)) {
    avx512::pad(p, in.rows, in.part, x, map, padded);
  } else {
    thread_local std::vector<float> wide;
    pad_plane(p, in, x, map, padded, wide);
  }
  return padded;
}

}  // namespace

void forward_plane(const Plane& p, const float* x, const float* w, float b, float* y,
                   const InputMap* map) {
  thread_local std::vector<float> padded;
  if (has_avx512() && avx512::fits_unpadded(p)) return avx512::forward_unpadded(p, x, map, w, b, y);
  if (fits_3x3(p)) {
    const Padded in(p);
    const float* src = padded_input(p, in, x, map, padded);
    if (runs_avx512(in)) return avx512::forward(p, src, in.part, w, b, y);
    return forward_3x3(p, src, w, b, y);
  }
  forward_plane_any(p, mapped_plane(p, x, map, padded), w, b, y);
}

// dx from dy (one plane each) and the turned kernel.
void backward_data_plane(const Plane& p, const float* dy, const float* turned, float* dx) {
  const Plane t = transposed(p);
  if (p.sh == 1 && p.sw == 1) return forward_plane(t, dy, turned, 0.0f, dx);
  thread_local std::vector<float> spread, row;
  if (p.kh == 3 && p.kw == 3 && p.sw == 2) {
    float w[9];
    for (int k = 0; k < 9; ++k) w[k] = turned[8 - k];  // turned back
    if (has_avx512()) return avx512::backward_data_s2(p, dy, w, dx);
    return backward_data_3x3_s2(p, dy, w, dx, spread, row);
  }
  spread.assign(t.size(), 0.0f);
  for (int64_t o = 0; o < p.oh; ++o)
    for (int64_t q = 0; q < p.ow; ++q) spread[o * p.sh * t.w + q * p.sw] = dy[o * p.ow + q];
  forward_plane(t, spread.data(), turned, 0.0f, dx);
}

namespace {

// Any window: dw[t] += sum of dy * x under kernel tap t; db += sum of dy.
// Products are added column by column into acc (taps x ow floats, in L1),
// which is summed once per plane.
GRAFT_PLANE_LOOP void backward_weights_plane(const Plane& p, const float* __restrict x,
                                             const float* __restrict dy, float* __restrict acc,
                                             double* dw, double* db) {
  const int64_t taps = p.kh * p.kw;
  for (int64_t e = 0; e < taps * p.ow; ++e) acc[e] = 0;
  float bias = 0;
  for (int64_t o = 0; o < p.oh; ++o) {
    const float* row = dy + o * p.ow;
#pragma omp simd reduction(+ : bias)
    for (int64_t q = 0; q < p.ow; ++q) bias += row[q];
    for (int64_t i = 0; i < p.kh; ++i) {
      const int64_t in = o * p.sh - p.pt + i;
      if (in < 0 || in >= p.h) continue;
      for (int64_t j = 0; j < p.kw; ++j) {
        float* sums = acc + (i * p.kw + j) * p.ow;
        const int64_t first = p.first(j), last = p.last(j);
        const float* src = x + column_offset(p, in, j);
        if (p.sw == 1) {
#pragma omp simd
          for (int64_t q = first; q < last; ++q) sums[q] += row[q] * src[q];
        } else {
#pragma omp simd
          for (int64_t q = first; q < last; ++q) sums[q] += row[q] * src[q * p.sw];
        }
      }
    }
  }
  for (int64_t t = 0; t < taps; ++t) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t q = 0; q < p.ow; ++q) s += acc[t * p.ow + q];
    dw[t] += s;
  }
  if (db) *db += bias;
}

}  // namespace

void weights_plane(const Plane& p, const float* x, const float* dy, double* dw, double* db,
                   const InputMap* map) {
  thread_local std::vector<float> padded_x, padded_dy, acc;
  if (has_avx512() && avx512::fits_unpadded(p))
    return avx512::weights_unpadded(p, x, map, dy, dw, db);
  if (fits_3x3(p)) {
    const Padded in(p);
    const float* src = padded_input(p, in, x, map, padded_x);
    if (runs_avx512(in)) return avx512::weights(p, src, in.part, dy, dw, db);
    return weights_3x3(p, src, dy, dw, db, padded_dy);
  }
  acc.resize(p.kh * p.kw * p.ow);
  backward_weights_plane(p, mapped_plane(p, x, map, padded_x), dy, acc.data(), dw, db);
}

std::vector<float> turned_kernels(const float* w, int64_t channels, int64_t taps) {
  std::vector<float> turned(w, w + channels * taps);
  for (int64_t ch = 0; ch < channels; ++ch)
    std::reverse(turned.begin() + ch * taps, turned.begin() + (ch + 1) * taps);
  return turned;
}

bool depthwise_forward(const ops::KernelContext& c, const ConvCase& k) {
  const Plane p = plane_of(k);
  const int64_t n = k.x[0], channels = k.x[1];
  const float* x = c.in(0).data<float>();
  const float* w = c.in(1).data<float>();
  const float* b = k.bias ? c.in(2).data<float>() : nullptr;
  float* y = c.out(0).data<float>();
#pragma omp parallel for num_threads(loop_threads(n * channels * p.size())) schedule(static)
  for (int64_t plane = 0; plane < n * channels; ++plane) {
    const int64_t ch = plane % channels;
    forward_plane(p, x + plane * p.size(), w + ch * p.kh * p.kw, b ? b[ch] : 0.0f,
                  y + plane * p.out_size());
  }
  count_served();
  return true;
}

bool depthwise_backward(const ops::BackwardContext& c, const ConvCase& k) {
  const Plane p = plane_of(k);
  const int64_t n = k.x[0], channels = k.x[1], taps = p.kh * p.kw;
  const float* x = c.in(0).data<float>();
  const float* w = c.in(1).data<float>();
  const float* dy = c.grad_out(0).data<float>();
  const int threads = loop_threads(n * channels * p.size());
  if (c.wants_grad(0)) {
    float* dx = c.grad_in(0).data<float>();
    const std::vector<float> turned = turned_kernels(w, channels, taps);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t plane = 0; plane < n * channels; ++plane) {
      backward_data_plane(p, dy + plane * p.out_size(), turned.data() + (plane % channels) * taps,
                          dx + plane * p.size());
    }
  }
  if (c.wants_grad(1) || c.wants_grad(2)) {
    float* dw = c.wants_grad(1) ? c.grad_in(1).data<float>() : nullptr;
    float* db = c.wants_grad(2) ? c.grad_in(2).data<float>() : nullptr;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t ch = 0; ch < channels; ++ch) {
      std::vector<double> sums(taps, 0.0);
      double bias_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t plane = i * channels + ch;
        weights_plane(p, x + plane * p.size(), dy + plane * p.out_size(), sums.data(),
                      db ? &bias_sum : nullptr);
      }
      if (dw)
        for (int64_t t = 0; t < taps; ++t) dw[ch * taps + t] = static_cast<float>(sums[t]);
      if (db) db[ch] = static_cast<float>(bias_sum);
    }
  }
  count_served();
  return true;
}

}  // namespace graft::backend
