// Separable resampling. Each output pixel is a weighted sum of the source
// pixels under a triangle filter centred on it; when shrinking, the triangle
// is widened by the scale so that it covers every source pixel
// (antialiasing), as PIL's bilinear resize does.
//
// The vertical pass runs first, over 8-bit rows, only on the source columns
// the output needs: its inner loop walks a contiguous row and vectorises.
// The horizontal pass then runs on one float row at a time with a fixed
// number of taps, so the compiler can unroll it.
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
  std::vector<int> first(out_size), count(out_size);
  std::vector<std::vector<double>> w(out_size);
  int taps = 1;
  for (int i = 0; i < out_size; ++i) {
    const double centre = start + (i + 0.5) * scale;
    int lo = std::max(0, static_cast<int>(std::floor(centre - support)));
    int hi = std::min(in_size, static_cast<int>(std::ceil(centre + support)));
    double total = 0;
    for (int j = lo; j < hi; ++j) {
      w[i].push_back(std::max(0.0, 1.0 - std::abs((j + 0.5 - centre) / support)));
      total += w[i].back();
    }
    // Drop zero weights at both ends: fewer taps to run.
    while (!w[i].empty() && w[i].back() == 0) w[i].pop_back();
    while (!w[i].empty() && w[i].front() == 0) w[i].erase(w[i].begin()), ++lo;
    if (total == 0) {  // the box lies outside the image here: take the nearest edge pixel
      lo = std::clamp(static_cast<int>(std::floor(centre)), 0, in_size - 1);
      w[i] = {1.0};
      total = 1;
    }
    for (double& v : w[i]) v /= total;
    first[i] = lo;
    taps = std::max(taps, static_cast<int>(w[i].size()));
  }
  Taps t;
  t.taps = taps;
  t.first = std::move(first);
  t.weights.assign(size_t(out_size) * taps, 0.0f);
  for (int i = 0; i < out_size; ++i)
    for (size_t k = 0; k < w[i].size(); ++k) t.weights[size_t(i) * taps + k] = float(w[i][k]);
  return t;
}

// One output row from one vertically filtered float row (RGB interleaved,
// starting at source column x_lo, zero-padded past its end).
template <int kTaps>
void horizontal(const float* row, const Taps& tx, int x_lo, int out_w, float* out) {
  const int taps = kTaps > 0 ? kTaps : tx.taps;
  for (int x = 0; x < out_w; ++x) {
    const float* w = tx.of(x);
    const float* s = row + size_t(tx.first[x] - x_lo) * 3;
    float r = 0, g = 0, b = 0;
    for (int k = 0; k < taps; ++k) {
      r += w[k] * s[3 * k];
      g += w[k] * s[3 * k + 1];
      b += w[k] * s[3 * k + 2];
    }
    out[3 * x] = r;
    out[3 * x + 1] = g;
    out[3 * x + 2] = b;
  }
}

using HorizontalFn = void (*)(const float*, const Taps&, int, int, float*);

HorizontalFn horizontal_for(int taps) {
  switch (taps) {
    case 1:
      return horizontal<1>;
    case 2:
      return horizontal<2>;
    case 3:
      return horizontal<3>;
    case 4:
      return horizontal<4>;
    case 5:
      return horizontal<5>;
    case 6:
      return horizontal<6>;
    case 7:
      return horizontal<7>;
    case 8:
      return horizontal<8>;
    default:
      return horizontal<0>;
  }
}

}  // namespace

void resample(const Image& src, const Box& box, int out_w, int out_h, float* out) {
  GRAFT_CHECK(src.width > 0 && src.height > 0 && out_w > 0 && out_h > 0 && box.w > 0 && box.h > 0,
              kInvalidArgument, "resample: empty image, box or output");
  const Taps tx = make_taps(src.width, box.x, box.w, out_w);
  const Taps ty = make_taps(src.height, box.y, box.h, out_h);
  // The source columns any output pixel reads.
  int x_lo = src.width, x_hi = 0;
  for (int x = 0; x < out_w; ++x) {
    x_lo = std::min(x_lo, tx.first[x]);
    x_hi = std::max(x_hi, std::min(src.width, tx.first[x] + tx.taps));
  }
  const size_t span = size_t(x_hi - x_lo) * 3;
  thread_local std::vector<float> row;
  row.assign(span + size_t(tx.taps) * 3, 0.0f);  // padding read with zero weights
  const HorizontalFn run_horizontal = horizontal_for(tx.taps);

  for (int y = 0; y < out_h; ++y) {
    const float* w = ty.of(y);
    const int n = std::min(ty.taps, src.height - ty.first[y]);
    float* acc = row.data();
    {
      const uint8_t* s = src.row(ty.first[y]) + size_t(x_lo) * 3;
      for (size_t i = 0; i < span; ++i) acc[i] = w[0] * s[i];
    }
    for (int k = 1; k < n; ++k) {
      const uint8_t* s = src.row(ty.first[y] + k) + size_t(x_lo) * 3;
      const float wk = w[k];
      if (wk == 0) continue;
      for (size_t i = 0; i < span; ++i) acc[i] += wk * s[i];
    }
    run_horizontal(acc, tx, x_lo, out_w, out + size_t(y) * out_w * 3);
  }
}

}  // namespace graft
