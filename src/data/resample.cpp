// Separable resampling: a horizontal pass over only the source rows the
// output needs, then a vertical pass. Each output pixel is a weighted sum of
// the source pixels under a triangle filter centred on it; when shrinking,
// the triangle is widened by the scale so that it covers every source pixel
// (antialiasing), as PIL's bilinear resize does.
#include <algorithm>
#include <cmath>
#include <vector>

#include "graft/error.h"
#include "graft/image.h"

namespace graft {

namespace {

// For each output index along one axis: the first source index and the
// normalised weights of `taps` consecutive source pixels (padded with zeros).
struct Taps {
  int taps = 0;
  std::vector<int> first;
  std::vector<float> weights;  // out_size * taps

  const float* of(int i) const { return weights.data() + size_t(i) * taps; }
};

Taps make_taps(int in_size, double start, double length, int out_size) {
  const double scale = length / out_size;       // source pixels per output pixel
  const double support = std::max(scale, 1.0);  // the triangle's half-width
  Taps t;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.weights.assign(size_t(out_size) * t.taps, 0.0f);
  std::vector<double> w(t.taps);
  for (int i = 0; i < out_size; ++i) {
    const double centre = start + (i + 0.5) * scale;
    int lo = std::max(0, static_cast<int>(std::floor(centre - support)));
    int hi = std::min(in_size, static_cast<int>(std::ceil(centre + support)));
    double total = 0;
    int n = 0;
    for (int j = lo; j < hi && n < t.taps; ++j, ++n) {
      w[n] = std::max(0.0, 1.0 - std::abs((j + 0.5 - centre) / support));
      total += w[n];
    }
    if (total == 0) {  // the box lies outside the image here: take the nearest edge pixel
      lo = std::clamp(static_cast<int>(std::floor(centre)), 0, in_size - 1);
      n = 1;
      w[0] = total = 1;
    }
    t.first[i] = lo;
    for (int k = 0; k < n; ++k) t.weights[size_t(i) * t.taps + k] = float(w[k] / total);
  }
  return t;
}

}  // namespace

void resample(const Image& src, const Box& box, int out_w, int out_h, float* out) {
  GRAFT_CHECK(src.width > 0 && src.height > 0 && out_w > 0 && out_h > 0 && box.w > 0 && box.h > 0,
              kInvalidArgument, "resample: empty image, box or output");
  const Taps tx = make_taps(src.width, box.x, box.w, out_w);
  const Taps ty = make_taps(src.height, box.y, box.h, out_h);
  const int y_lo = ty.first.front();
  const int y_hi = std::min(src.height, ty.first.back() + ty.taps);

  // Horizontal pass: source rows y_lo..y_hi-1 to out_w columns.
  const size_t row_len = size_t(out_w) * 3;
  thread_local std::vector<float> rows;
  rows.resize(size_t(y_hi - y_lo) * row_len);
  for (int y = y_lo; y < y_hi; ++y) {
    const uint8_t* s = src.row(y);
    float* d = rows.data() + size_t(y - y_lo) * row_len;
    for (int x = 0; x < out_w; ++x) {
      const float* w = tx.of(x);
      const uint8_t* p = s + size_t(tx.first[x]) * 3;
      const int n = std::min(tx.taps, src.width - tx.first[x]);
      float r = 0, g = 0, b = 0;
      for (int k = 0; k < n; ++k, p += 3) {
        r += w[k] * p[0];
        g += w[k] * p[1];
        b += w[k] * p[2];
      }
      d[x * 3] = r;
      d[x * 3 + 1] = g;
      d[x * 3 + 2] = b;
    }
  }

  // Vertical pass: whole rows at a time, so the inner loop is contiguous.
  for (int y = 0; y < out_h; ++y) {
    float* d = out + size_t(y) * row_len;
    std::fill(d, d + row_len, 0.0f);
    const float* w = ty.of(y);
    const int n = std::min(ty.taps, y_hi - ty.first[y]);
    for (int k = 0; k < n; ++k) {
      const float* s = rows.data() + size_t(ty.first[y] + k - y_lo) * row_len;
      const float wk = w[k];
      if (wk == 0) continue;
      for (size_t i = 0; i < row_len; ++i) d[i] += wk * s[i];
    }
  }
}

}  // namespace graft
