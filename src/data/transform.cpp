#include "data/transform.h"

#include <algorithm>
#include <cmath>

#include "data/random.h"
#include "graft/error.h"

namespace graft {

namespace data {

void check_preprocess(const Preprocess& p) {
  GRAFT_CHECK(p.size > 0 && p.size <= 16384, kInvalidArgument,
              "preprocess: size must be in 1..16384, got {}", p.size);
  GRAFT_CHECK(p.crop_fraction > 0 && p.crop_fraction <= 1, kInvalidArgument,
              "preprocess: crop_fraction must be in (0, 1], got {}", p.crop_fraction);
}

namespace {

// Resize the shorter side to round(size / crop_fraction) (or both sides,
// without keep_aspect), then take the centre size×size: as torchvision's
// Resize + CenterCrop compute it, expressed as a box of the original.
Box centre_box(int w, int h, const Preprocess& p) {
  double target = std::round(double(p.size) / p.crop_fraction);
  double rw = target, rh = target;
  if (p.keep_aspect) {
    if (w <= h)
      rh = std::floor(target * h / w);
    else
      rw = std::floor(target * w / h);
  }
  double left = std::round((rw - double(p.size)) / 2), top = std::round((rh - double(p.size)) / 2);
  double sx = w / rw, sy = h / rh;  // original pixels per resized pixel
  return {left * sx, top * sy, double(p.size) * sx, double(p.size) * sy};
}

// torchvision's RandomResizedCrop.get_params: an area fraction in
// [min_area, 1] and an aspect ratio log-uniform in [3/4, 4/3]; ten tries,
// then the whole image clamped to that aspect range.
Box random_box(int w, int h, float min_area, Rng& rng) {
  const double area = double(w) * h, lo = std::log(3.0 / 4), hi = std::log(4.0 / 3);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * rng.uniform(min_area, 1.0);
    double ratio = std::exp(rng.uniform(lo, hi));
    double cw = std::round(std::sqrt(target * ratio)), ch = std::round(std::sqrt(target / ratio));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      double y = double(rng.below(uint64_t(h - ch) + 1));
      double x = double(rng.below(uint64_t(w - cw) + 1));
      return {x, y, cw, ch};
    }
  }
  double ratio = double(w) / h, cw = w, ch = h;
  if (ratio < 3.0 / 4)
    ch = std::round(cw / (3.0 / 4));
  else if (ratio > 4.0 / 3)
    cw = std::round(ch * 4.0 / 3);
  ch = std::min(ch, double(h));
  return {std::floor((w - cw) / 2), std::floor((h - ch) / 2), cw, ch};
}

float luma(const float* rgb) { return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]; }
float clamp255(float v) { return std::clamp(v, 0.0f, 255.0f); }

// torchvision's ColorJitter on 0..255 values, in a fixed order: brightness,
// contrast (towards the mean luma), saturation (towards each pixel's luma).
void jitter(std::vector<float>& rgb, const TransformPlan& plan) {
  for (float& v : rgb) v = clamp255(v * plan.brightness);
  double sum = 0;
  for (size_t i = 0; i < rgb.size(); i += 3) sum += luma(&rgb[i]);
  float mean = static_cast<float>(sum / double(rgb.size() / 3));
  for (float& v : rgb) v = clamp255(plan.contrast * v + (1 - plan.contrast) * mean);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    float grey = luma(&rgb[i]);
    for (int c = 0; c < 3; ++c)
      rgb[i + c] = clamp255(plan.saturation * rgb[i + c] + (1 - plan.saturation) * grey);
  }
}

}  // namespace

TransformPlan plan_transform(int width, int height, const Preprocess& p, const Augment& a,
                             uint64_t rng_seed) {
  TransformPlan plan;
  if (!a.enabled) {
    plan.box = centre_box(width, height, p);
    return plan;
  }
  GRAFT_CHECK(a.min_crop_area > 0 && a.min_crop_area <= 1, kInvalidArgument,
              "augment: min_crop_area must be in (0, 1], got {}", a.min_crop_area);
  GRAFT_CHECK(a.jitter >= 0 && a.jitter < 1, kInvalidArgument,
              "augment: jitter must be in [0, 1), got {}", a.jitter);
  Rng rng(rng_seed);
  plan.box = random_box(width, height, a.min_crop_area, rng);
  plan.flip = a.hflip && rng.uniform() < 0.5;
  if (a.jitter > 0) {
    plan.brightness = float(rng.uniform(1 - a.jitter, 1 + a.jitter));
    plan.contrast = float(rng.uniform(1 - a.jitter, 1 + a.jitter));
    plan.saturation = float(rng.uniform(1 - a.jitter, 1 + a.jitter));
  }
  return plan;
}

void finish_transform(const float* rgb, const TransformPlan& plan, const Preprocess& p,
                      float* out) {
  const int64_t n = p.size;
  const float* src = rgb;
  std::vector<float> jittered;
  if (plan.brightness != 1 || plan.contrast != 1 || plan.saturation != 1) {
    jittered.assign(rgb, rgb + n * n * 3);
    jitter(jittered, plan);
    src = jittered.data();
  }
  // Row by row, channel by channel, with the layout and the flip decided
  // outside the inner loop (it vectorises).
  for (int64_t y = 0; y < n; ++y) {
    const float* row = src + y * n * 3;
    for (int c = 0; c < 3; ++c) {
      const float mean = p.mean[c], scale = p.scale[c];
      const int64_t step = p.nhwc ? 3 : 1;
      float* dst = p.nhwc ? out + y * n * 3 + c : out + (c * n + y) * n;
      if (plan.flip) {
        for (int64_t x = 0; x < n; ++x) dst[(n - 1 - x) * step] = (row[x * 3 + c] - mean) * scale;
      } else if (step == 1) {
        for (int64_t x = 0; x < n; ++x) dst[x] = (row[x * 3 + c] - mean) * scale;
      } else {
        for (int64_t x = 0; x < n; ++x) dst[x * 3] = (row[x * 3 + c] - mean) * scale;
      }
    }
  }
}

}  // namespace data

Preprocess Preprocess::from_mean_std(std::array<float, 3> mean, std::array<float, 3> std) {
  Preprocess p;
  for (int c = 0; c < 3; ++c) {
    GRAFT_CHECK(std[c] > 0, kInvalidArgument, "preprocess: std must be positive, got {}", std[c]);
    p.mean[c] = mean[c] * 255;
    p.scale[c] = 1 / (std[c] * 255);
  }
  return p;
}

Preprocess Preprocess::imagenet() {
  return from_mean_std({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
}

Box crop_box(int width, int height, const Preprocess& p, const Augment& a, uint64_t rng_seed) {
  return data::plan_transform(width, height, p, a, rng_seed).box;
}

}  // namespace graft
