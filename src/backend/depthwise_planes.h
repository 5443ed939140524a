// Depthwise 2-D convolution of one channel's plane (depthwise.cpp), shared
// by the depthwise kernels and the fused normalise-depthwise-normalise step
// (norm_depthwise.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/conv_case.h"
#include "backend/norm_planes.h"

namespace graft::backend {

struct Plane {
  int64_t h, w, oh, ow;     // input and output sizes
  int64_t kh, kw, sh, sw;   // kernel and strides
  int64_t pt, pl;           // top and left padding
  int64_t size() const { return h * w; }
  int64_t out_size() const { return oh * ow; }
  // The output columns [first, last) whose input column q * sw - pl + j
  // lies inside the row, for kernel column j.
  int64_t first(int64_t j) const { return std::clamp<int64_t>(ceil_div(pl - j, sw), 0, ow); }
  int64_t last(int64_t j) const {
    return std::max(first(j), std::clamp<int64_t>(floor_div(w - 1 + pl - j, sw) + 1, 0, ow));
  }
  static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
  static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
};

inline Plane plane_of(const ConvCase& k) {
  return {k.x[2], k.x[3], k.y[2], k.y[3], k.w[3], k.w[4], k.strides[0], k.strides[1],
          k.pad_l[0], k.pad_l[1]};
}

// The convolution's input made from x as it is read: clamp(f(x), lo, hi), a
// BatchNormalization with the activation after it (norm_planes.h).
struct InputMap {
  Affine f;
  float lo, hi;
};

// The kernel rows of a 3x3 window that reach input row r (at most three),
// for the data gradient: kernel row i from output row (r + pt - i) / sh.
struct RowsReaching {
  int count = 0;
  int64_t out_row[3];
  int tap_row[3];  // 3 * i: where kernel row i starts
};
// Asked for every input row: strides 1 and 2 without a division (three per
// row cost the stride-2 data gradient a third of its time at 112x112).
inline RowsReaching rows_reaching(const Plane& p, int64_t r) {
  RowsReaching rows;
  for (int i = 0; i < 3; ++i) {
    const int64_t at = r + p.pt - i;
    if (at < 0) continue;
    int64_t o = at;
    if (p.sh == 2) {
      if (at & 1) continue;
      o = at >> 1;
    } else if (p.sh != 1) {
      if (at % p.sh != 0) continue;
      o = at / p.sh;
    }
    if (o >= p.oh) continue;
    rows.out_row[rows.count] = o;
    rows.tap_row[rows.count++] = 3 * i;
  }
  return rows;
}

// y (oh x ow) = b + the convolution of x (h x w), or of map(x), with one
// channel's kernel w.
void forward_plane(const Plane& p, const float* x, const float* w, float b, float* y,
                   const InputMap* map = nullptr);
// dx from dy and the channel's kernel turned half way round (turned_kernels).
void backward_data_plane(const Plane& p, const float* dy, const float* turned, float* dx);
// dw[t] += sum of dy * x (or map(x)) under kernel tap t; *db += sum of dy
// (db may be nullptr).
void weights_plane(const Plane& p, const float* x, const float* dy, double* dw, double* db,
                   const InputMap* map = nullptr);
// Each of `channels` kernels of `taps` weights reversed.
std::vector<float> turned_kernels(const float* w, int64_t channels, int64_t taps);

}  // namespace graft::backend
