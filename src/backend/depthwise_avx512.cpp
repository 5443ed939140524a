// The 3x3 depthwise plane kernels in AVX-512 intrinsics (depthwise_avx512.h).
// GCC's generic vector code for the same loops (depthwise.cpp, kept for
// other machines) reloaded tap offsets from the stack and spilled its sums
// around every tile. Measured per plane, one thread, against those loops:
// forward with the input normalised as it is padded 2.10 -> 1.57 us at
// 56x56, 0.28 -> 0.14 us at 14x14; weight gradient 2.20 -> 1.90 us and
// 0.40 -> 0.20 us; stride-2 data gradient 1.21 -> 0.96 us at 56x56.
// Masked loads take the rows' ends: no scalar tails, and dy needs no padded
// copy for the weight and the stride-2 data gradients.

#include "backend/depthwise_avx512.h"

#include <type_traits>

#include "backend/avx512.h"

namespace graft::backend::avx512 {

namespace {

// The lanes of sixteen values from `at` that lie in [first, last).
GRAFT_AVX512 inline __mmask16 lanes_within(int64_t at, int64_t first, int64_t last) {
  return lanes_below(at, last) & static_cast<__mmask16>(~lanes_below(at, first));
}

struct Map {
  __m512 k, centre, a, shift, lo, hi;
};

GRAFT_AVX512 inline Map map_of(const InputMap& m) {
  return {_mm512_set1_ps(m.f.k),     _mm512_set1_ps(m.f.centre), _mm512_set1_ps(m.f.a),
          _mm512_set1_ps(m.f.shift), _mm512_set1_ps(m.lo),       _mm512_set1_ps(m.hi)};
}

// clamp(f(v), lo, hi) on the lanes given, zero on the others.
GRAFT_AVX512 inline __m512 mapped(const Map& m, __m512 v, __mmask16 lanes) {
  v = _mm512_fmadd_ps(m.a, _mm512_sub_ps(_mm512_sub_ps(v, m.k), m.centre), m.shift);
  return _mm512_maskz_mov_ps(lanes, _mm512_min_ps(_mm512_max_ps(v, m.lo), m.hi));
}

// The even and the odd ones of thirty-two values, a then b.
GRAFT_AVX512 inline __m512i even_lanes() {
  return _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
}
GRAFT_AVX512 inline __m512 evens(__m512 a, __m512 b) {
  return _mm512_permutex2var_ps(a, even_lanes(), b);
}
GRAFT_AVX512 inline __m512 odds(__m512 a, __m512 b) {
  return _mm512_permutex2var_ps(a, _mm512_add_epi32(even_lanes(), _mm512_set1_epi32(1)), b);
}

// Tap (i, j) of output (o, q) reads padded + o * SH * row + q + i * row +
// column j's offset, row = SW * part (depthwise.cpp's Padded): j at column
// stride 1; 0, part (the odd columns) and 1 at stride 2. The padded copy is
// aligned to 64 bytes and `part` is whole vectors.

// The sum of v's lanes, halving in registers (GCC 12's _mm512_reduce_add_ps
// warns of an uninitialised variable of its own; adding the lanes one by one
// from memory cost a 14x14 plane's weight gradient half its time).
GRAFT_AVX512 inline float lane_sum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}

// v to columns q.. of an output row of ow floats: the lanes past the row's
// end are left out (masked; lane by lane through a buffer, GCC called
// memmove, and on 14x14 planes that took 40% as long as the convolution
// itself). Spilled onto the next row instead, they would overwrite values a
// tile to the left has written when a row takes several tiles.
GRAFT_AVX512 inline void store(float* row, int64_t q, int64_t ow, __m512 v) {
  if (q + kLanes <= ow) return _mm512_storeu_ps(row + q, v);
  _mm512_mask_storeu_ps(row + q, lanes_below(q, ow), v);
}

// v shifted down by `lanes` lanes, the next vector's first lanes after it.
template <int lanes>
GRAFT_AVX512 inline __m512 shifted(__m512 v, __m512 next) {
  return _mm512_castsi512_ps(
      _mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(v), lanes));
}

// The three vectors kernel columns 0, 1, 2 read for sixteen outputs of a
// padded row: two aligned loads, shifted (three unaligned loads took 15%
// longer on 56x56 planes).
template <int SW>
GRAFT_AVX512 inline void taps_of(const float* at, int64_t part, __m512* v) {
  const __m512 here = _mm512_load_ps(at), next = _mm512_load_ps(at + kLanes);
  v[0] = here;
  v[1] = SW == 1 ? shifted<1>(here, next) : _mm512_load_ps(at + part);
  v[2] = SW == 1 ? shifted<2>(here, next) : shifted<1>(here, next);
}

// Where a tile's inputs come from. taps(r, q, v) sets v[j] to the sixteen
// values kernel column j reads for outputs q.. in window row r (output row
// o reads window rows o * SH .. o * SH + 2).

// depthwise.cpp's padded copy: window row r is padded row r.
template <int SW>
struct PaddedRows {
  const float* padded;
  int64_t part;
  GRAFT_AVX512 void taps(int64_t r, int64_t q, __m512* v) const {
    taps_of<SW>(padded + r * SW * part + q, part, v);
  }
};

// Output rows o .. o + R - 1 of B vectors from column qb (ow a row).
template <int SH, int R, int B, class Rows>
GRAFT_AVX512 inline void tile(const Rows& rows, const __m512* w, __m512 bias, float* y, int64_t ow,
                              int64_t o, int64_t qb) {
  __m512 acc[R][B];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int u = 0; u < B; ++u) acc[r][u] = bias;
  // Each window row once, for every output row that reads it.
#pragma GCC unroll 9
  for (int k = 0; k < (R - 1) * SH + 3; ++k)
#pragma GCC unroll 4
    for (int u = 0; u < B; ++u) {
      __m512 v[3];
      rows.taps(o * SH + k, qb + u * kLanes, v);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const int i = k - r * SH;
        if (i < 0 || i >= 3) continue;
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) acc[r][u] = _mm512_fmadd_ps(w[i * 3 + j], v[j], acc[r][u]);
      }
    }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int u = 0; u < B; ++u) store(y + (o + r) * ow, qb + u * kLanes, ow, acc[r][u]);
}

// Output rows o .. o + R - 1, sixteen columns at a time (four vectors side
// by side, then what is left).
template <int SH, int R, class Rows>
GRAFT_AVX512 inline void row_tile(const Plane& p, const Rows& rows, const __m512* w,
                                  __m512 bias, float* y, int64_t o) {
  const int64_t blocks = (p.ow + kLanes - 1) / kLanes;
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) tile<SH, R, 4>(rows, w, bias, y, p.ow, o, b * kLanes);
  switch (blocks - b) {
    case 3:
      return tile<SH, R, 3>(rows, w, bias, y, p.ow, o, b * kLanes);
    case 2:
      return tile<SH, R, 2>(rows, w, bias, y, p.ow, o, b * kLanes);
    case 1:
      return tile<SH, R, 1>(rows, w, bias, y, p.ow, o, b * kLanes);
    default: return;
  }
}

// y = b + the 3x3 window sums with kernel w, R output rows at a time, then
// the rows left in tiles of two and one: a tile past the last row would
// read past the padded copy's end (14x14 planes took 2.5x as long when
// their last tile did). A tile's sums are chains of nine multiply-adds, so
// a tile of one row waits on each.
template <int SH, int R, class Rows>
GRAFT_AVX512 void convolve(const Plane& p, const Rows& rows, const float* w, float b, float* y) {
  __m512 taps[9];
  for (int t = 0; t < 9; ++t) taps[t] = _mm512_set1_ps(w[t]);
  const __m512 bias = _mm512_set1_ps(b);
  int64_t o = 0;
  for (; o + R <= p.oh; o += R) row_tile<SH, R>(p, rows, taps, bias, y, o);
  if (R > 2)
    for (; o + 2 <= p.oh; o += 2) row_tile<SH, 2>(p, rows, taps, bias, y, o);
  for (; o < p.oh; ++o) row_tile<SH, 1>(p, rows, taps, bias, y, o);
}

// dw[t] += the sum of dy * the input under tap t, sixteen columns at a time
// down all rows with the nine sums in registers; *db += the sum of dy.
template <int SH, int SW>
GRAFT_AVX512 void weights(const Plane& p, const float* padded, int64_t part, const float* dy,
                          double* dw, double* db) {
  const PaddedRows<SW> rows{padded, part};
  __m512 sums[9], bias = _mm512_setzero_ps();
  for (int t = 0; t < 9; ++t) sums[t] = _mm512_setzero_ps();
  for (int64_t qb = 0; qb < p.ow; qb += kLanes) {
    const __mmask16 in = lanes_below(qb, p.ow);
    for (int64_t o = 0; o < p.oh; ++o) {
      const __m512 g = _mm512_maskz_loadu_ps(in, dy + o * p.ow + qb);
      bias = _mm512_add_ps(bias, g);
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i) {
        __m512 v[3];
        rows.taps(o * SH + i, qb, v);
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) sums[i * 3 + j] = _mm512_fmadd_ps(g, v[j], sums[i * 3 + j]);
      }
    }
  }
  for (int t = 0; t < 9; ++t) dw[t] += lane_sum(sums[t]);
  if (db) *db += lane_sum(bias);
}

// pad() at column stride SW, mapping the values when Mapped. A tight loop
// of its own per case: with the map's constants in registers and one
// masked load per sixteen columns it runs 16 -> 8 cycles per sixteen values
// at 56x56 (the general loop reloaded the constants and branched on each).
template <int SW, bool Mapped>
GRAFT_AVX512 void pad_rows(const Plane& p, int64_t rows, int64_t part, const float* x,
                           const InputMap& input_map, float* out) {
  const int64_t width = SW * part;
  GRAFT_ASSERT(width <= kMaxPaddedRow);
  // Padded column c shows input column c - pl: which lanes of each sixteen
  // columns do, the same in every row.
  __mmask16 shown[kMaxPaddedRow / kLanes];
  for (int64_t c = 0; c < width; c += kLanes) shown[c / kLanes] = lanes_within(c, p.pl, p.pl + p.w);
  const Map m = Mapped ? map_of(input_map) : Map{};
  // Sixteen columns from c of a row starting at src, zero where not shown.
  auto columns = [&](const float* src, int64_t c) GRAFT_AVX512 {
    const __mmask16 lanes = shown[c / kLanes];
    if (!lanes) return _mm512_setzero_ps();  // the columns past the row's end
    __m512 v = _mm512_maskz_loadu_ps(lanes, src + c);
    return Mapped ? mapped(m, v, lanes) : v;
  };
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = out + r * width;
    const int64_t in = r - p.pt;
    if (in < 0 || in >= p.h) {
      for (int64_t c = 0; c < width; c += kLanes) _mm512_storeu_ps(dst + c, _mm512_setzero_ps());
      continue;
    }
    const float* src = x + in * p.w - p.pl;
    for (int64_t c = 0; c < width; c += SW * kLanes) {
      if (SW == 1) {
        _mm512_storeu_ps(dst + c, columns(src, c));
        continue;
      }
      // Thirty-two columns from c, split into their even and odd ones.
      const __m512 a = columns(src, c), b = columns(src, c + kLanes);
      _mm512_storeu_ps(dst + c / 2, evens(a, b));
      _mm512_storeu_ps(dst + part + c / 2, odds(a, b));
    }
  }
}

}  // namespace

GRAFT_AVX512 void pad(const Plane& p, int64_t rows, int64_t part, const float* x,
                      const InputMap* map, float* out) {
  if (p.sw == 1) return map ? pad_rows<1, true>(p, rows, part, x, *map, out)
                            : pad_rows<1, false>(p, rows, part, x, {}, out);
  map ? pad_rows<2, true>(p, rows, part, x, *map, out) : pad_rows<2, false>(p, rows, part, x, {}, out);
}

GRAFT_AVX512 void forward(const Plane& p, const float* padded, int64_t part, const float* w,
                          float b, float* y) {
  const bool narrow = p.ow <= 2 * kLanes;  // more rows side by side
  if (p.sh == 1 && p.sw == 1) {
    const PaddedRows<1> rows{padded, part};
    return narrow ? convolve<1, 4>(p, rows, w, b, y) : convolve<1, 2>(p, rows, w, b, y);
  }
  const PaddedRows<2> rows{padded, part};
  if (p.sh == 2 && p.sw == 2)
    return narrow ? convolve<2, 4>(p, rows, w, b, y) : convolve<2, 2>(p, rows, w, b, y);
  if (p.sw == 1) return convolve<2, 2>(p, PaddedRows<1>{padded, part}, w, b, y);
  convolve<1, 2>(p, rows, w, b, y);
}

GRAFT_AVX512 void weights(const Plane& p, const float* padded, int64_t part, const float* dy,
                          double* dw, double* db) {
  if (p.sh == 1 && p.sw == 1) return weights<1, 1>(p, padded, part, dy, dw, db);
  if (p.sh == 2 && p.sw == 2) return weights<2, 2>(p, padded, part, dy, dw, db);
  if (p.sw == 1) return weights<2, 1>(p, padded, part, dy, dw, db);
  weights<1, 2>(p, padded, part, dy, dw, db);
}

// --- Outputs of at most seven vectors a row (planes up to 112 wide) at
// strides 1 and 2: a value's neighbours in the window come from the row's
// vectors moved one lane either way (at stride 2 split into even and odd
// columns first), so no padded copy is made. Against the padded kernels:
// - stride 1, per plane, one thread (the best of four runs): forward with
//   the input mapped 105 -> 56-61 ns at 14x14, 320 -> 222 at 28x28,
//   1418 -> 1004 at 56x56, 5394 -> 4220 at 112x112; without (the data
//   gradient) 85 -> 41-43, 276 -> 164, 1243 -> 772 and 4844 -> 3682 ns;
//   weight gradient 165 -> 102-123, 465 -> 287, 1770 -> 1239 and
//   7403 -> 4302 ns;
// - stride 2, blocks at batch 32 forward and backward: 96x112x112
//   16.5 -> 13.7 ms and 20.5 -> 18.5 ms, 144x56x56 5.0 -> 4.3 and
//   7.5 -> 6.7 ms ---

namespace {

constexpr int64_t kMaxRowVectors = 7;  // at most, per row (112 wide)

// Of the output.
int64_t vectors_per_row(const Plane& p) { return (p.ow + kLanes - 1) / kLanes; }

}  // namespace

bool fits_unpadded(const Plane& p) {
  const bool s1 = p.sh == 1 && p.sw == 1 && p.oh == p.h && p.ow == p.w;
  const bool s2 = p.sh == 2 && p.sw == 2 && p.oh == (p.h + 1) / 2 && p.ow == (p.w + 1) / 2;
  return p.kh == 3 && p.kw == 3 && p.pt == 1 && p.pl == 1 && (s1 || s2) &&
         vectors_per_row(p) <= kMaxRowVectors;
}

namespace {

// Row r's values (mapped when Mapped) as kernel columns 0, 1, 2 read them
// for the outputs of each of B vectors: x[S q - 1], x[S q], x[S q + 1] at
// column stride S, zero outside the row and below or above the plane.
template <int S, int B, bool Mapped>
struct RowTaps {
  const Plane& p;
  const float* x;
  const InputMap* map;
  Map m = Mapped ? map_of(*map) : Map{};
  __mmask16 lanes[S * B];  // of each input vector, within the row
  GRAFT_AVX512 RowTaps(const Plane& plane, const float* values, const InputMap* input_map)
      : p(plane), x(values), map(input_map) {
    for (int u = 0; u < S * B; ++u) lanes[u] = lanes_below(u * kLanes, p.w);
  }
  GRAFT_AVX512 void taps(int64_t r, __m512 (&v)[3][B]) const {
    const __m512 zero = _mm512_setzero_ps();
    __m512 c[S * B];  // the row's vectors
    for (int u = 0; u < S * B; ++u) c[u] = zero;
    if (r >= 0 && r < p.h)
#pragma GCC unroll 16
      for (int u = 0; u < S * B; ++u) {
        const __m512 e = _mm512_maskz_loadu_ps(lanes[u], x + r * p.w + u * kLanes);
        c[u] = Mapped ? mapped(m, e, lanes[u]) : e;
      }
    if (S == 1) {
#pragma GCC unroll 8
      for (int u = 0; u < B; ++u) {
        v[0][u] = shifted<kLanes - 1>(u > 0 ? c[u - 1] : zero, c[u]);
        v[1][u] = c[u];
        v[2][u] = shifted<1>(c[u], u + 1 < B ? c[u + 1] : zero);
      }
      return;
    }
    // Stride 2: the even and the odd columns of each two vectors, and the
    // odd ones moved one lane on for x[2q - 1].
    __m512 before = zero;
#pragma GCC unroll 8
    for (int u = 0; u < B; ++u) {
      v[1][u] = evens(c[S * u], c[S * u + 1]);
      v[2][u] = odds(c[S * u], c[S * u + 1]);
      v[0][u] = shifted<kLanes - 1>(before, v[2][u]);
      before = v[2][u];
    }
  }
};

// each(o, window) for every output row o, window holding the taps of
// input rows S o - 1, S o and S o + 1: it slides down the plane S rows at
// a time, each row loaded and mapped once.
template <int S, int B, bool Mapped, class Each>
GRAFT_AVX512 inline void down_the_plane(const RowTaps<S, B, Mapped>& rows, const Each& each) {
  __m512 window[3][3][B];
  rows.taps(-1, window[S == 1 ? 1 : 2]);  // row -1 (zeros), moved to the top below
  if (S == 1) rows.taps(0, window[2]);
  for (int64_t o = 0; o < rows.p.oh; ++o) {
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j)
#pragma GCC unroll 8
      for (int u = 0; u < B; ++u) {
        window[0][j][u] = window[S][j][u];
        if (S == 1) window[1][j][u] = window[2][j][u];
      }
    if (S == 2) rows.taps(S * o, window[1]);
    rows.taps(S * o + 1, window[2]);
    each(o, window);
  }
}

template <int S, int B, bool Mapped>
GRAFT_AVX512 void forward_unpadded(const Plane& p, const float* x, const InputMap* map,
                                   const float* w, float b, float* y) {
  __m512 taps[9];
  for (int t = 0; t < 9; ++t) taps[t] = _mm512_set1_ps(w[t]);
  const __m512 bias = _mm512_set1_ps(b);
  down_the_plane(RowTaps<S, B, Mapped>(p, x, map), [&](int64_t o, const auto& window) GRAFT_AVX512 {
#pragma GCC unroll 8
    for (int u = 0; u < B; ++u) {
      // Two sums side by side: nine dependent multiply-adds would wait on each.
      __m512 a = bias, c = _mm512_setzero_ps();
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i) {
        a = _mm512_fmadd_ps(taps[i * 3], window[i][0][u], a);
        c = _mm512_fmadd_ps(taps[i * 3 + 1], window[i][1][u], c);
        a = _mm512_fmadd_ps(taps[i * 3 + 2], window[i][2][u], a);
      }
      _mm512_mask_storeu_ps(y + o * p.ow + u * kLanes, lanes_below(u * kLanes, p.ow),
                            _mm512_add_ps(a, c));
    }
  });
}

template <int S, int B, bool Mapped>
GRAFT_AVX512 void weights_unpadded(const Plane& p, const float* x, const InputMap* map,
                                   const float* dy, double* dw, double* db) {
  __m512 sums[9], bias = _mm512_setzero_ps();
  for (int t = 0; t < 9; ++t) sums[t] = _mm512_setzero_ps();
  down_the_plane(RowTaps<S, B, Mapped>(p, x, map), [&](int64_t o, const auto& window) GRAFT_AVX512 {
#pragma GCC unroll 8
    for (int u = 0; u < B; ++u) {
      const __m512 g =
          _mm512_maskz_loadu_ps(lanes_below(u * kLanes, p.ow), dy + o * p.ow + u * kLanes);
      bias = _mm512_add_ps(bias, g);
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j)
          sums[i * 3 + j] = _mm512_fmadd_ps(g, window[i][j][u], sums[i * 3 + j]);
    }
  });
  for (int t = 0; t < 9; ++t) dw[t] += lane_sum(sums[t]);
  if (db) *db += lane_sum(bias);
}

// each(stride, vectors, mapped): the kernel made for the plane's stride,
// its vectors per output row (1, 2, 4 or 7: 14x14 to 112x112 outputs; 3, 5
// and 6 take the next larger) and whether the input is mapped, as
// std::integral_constant values.
template <class Each>
GRAFT_AVX512 void dispatch(const Plane& p, bool mapped, const Each& each) {
  auto with = [&](auto vectors) {
    using One = std::integral_constant<int, 1>;
    using Two = std::integral_constant<int, 2>;
    if (p.sw == 1)
      return mapped ? each(One{}, vectors, std::true_type{})
                    : each(One{}, vectors, std::false_type{});
    mapped ? each(Two{}, vectors, std::true_type{}) : each(Two{}, vectors, std::false_type{});
  };
  const int64_t v = vectors_per_row(p);
  if (v <= 1) return with(std::integral_constant<int, 1>{});
  if (v <= 2) return with(std::integral_constant<int, 2>{});
  if (v <= 4) return with(std::integral_constant<int, 4>{});
  with(std::integral_constant<int, 7>{});
}

}  // namespace

GRAFT_AVX512 void forward_unpadded(const Plane& p, const float* x, const InputMap* map,
                                   const float* w, float b, float* y) {
  dispatch(p, map, [&](auto stride, auto vectors, auto mapped) GRAFT_AVX512 {
    forward_unpadded<stride, vectors, mapped>(p, x, map, w, b, y);
  });
}

GRAFT_AVX512 void weights_unpadded(const Plane& p, const float* x, const InputMap* map,
                                   const float* dy, double* dw, double* db) {
  dispatch(p, map, [&](auto stride, auto vectors, auto mapped) GRAFT_AVX512 {
    weights_unpadded<stride, vectors, mapped>(p, x, map, dy, dw, db);
  });
}

GRAFT_AVX512 void backward_data_s2(const Plane& p, const float* dy, const float* w, float* dx) {
  __m512 taps[9];
  for (int t = 0; t < 9; ++t) taps[t] = _mm512_set1_ps(w[t]);
  // Even and odd columns interleaved: lanes 0..15 of (even, odd) give
  // padded columns 2m .. 2m + 15, lanes 16..31 the next sixteen.
  const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
  const int64_t columns = p.w + p.pl;  // padded columns that hold dx
  // The masks of each block of sixteen m, the same in every row (made per
  // row they cost as much as the arithmetic).
  struct Masks {
    __mmask16 here, before, low, high;
  } masks[kMaxPaddedRow / kLanes];
  GRAFT_ASSERT(columns <= 2 * kMaxPaddedRow);
  for (int64_t m = 0; 2 * m < columns; m += kLanes) {
    const int64_t c = 2 * m - p.pl;
    masks[m / kLanes] = {lanes_below(m, p.ow), lanes_within(m - 1, 0, p.ow),
                         lanes_within(c, 0, p.w), lanes_within(c + kLanes, 0, p.w)};
  }
  for (int64_t r = 0; r < p.h; ++r) {
    const RowsReaching rows = rows_reaching(p, r);
    for (int64_t m = 0; 2 * m < columns; m += kLanes) {
      // Padded column P = 2m + 2l (even) takes w(i,0) dy(m + l) + w(i,2)
      // dy(m + l - 1); P + 1 (odd) takes w(i,1) dy(m + l).
      __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
      const Masks& mask = masks[m / kLanes];
      const __mmask16 here = mask.here, before = mask.before;
      for (int k = 0; k < rows.count; ++k) {
        const float* d = dy + rows.out_row[k] * p.ow;
        const int t = rows.tap_row[k];
        const __m512 at = _mm512_maskz_loadu_ps(here, d + m);
        const __m512 left = _mm512_maskz_loadu_ps(before, d + m - 1);
        even = _mm512_fmadd_ps(taps[t], at, even);
        even = _mm512_fmadd_ps(taps[t + 2], left, even);
        odd = _mm512_fmadd_ps(taps[t + 1], at, odd);
      }
      // Straight into dx, whose column c is padded column c + pl (through
      // a row buffer, the copy cost 2% of W3's step).
      float* out = dx + r * p.w + 2 * m - p.pl;
      _mm512_mask_storeu_ps(out, mask.low, _mm512_permutex2var_ps(even, low, odd));
      _mm512_mask_storeu_ps(out + kLanes, mask.high, _mm512_permutex2var_ps(even, high, odd));
    }
  }
}

}  // namespace graft::backend::avx512
