// The random choices of one image's transform, drawn once from its seed.
#pragma once

#include "graft/image.h"

namespace graft::data {

struct TransformPlan {
  Box box;  // in the (oriented) image's pixels
  bool flip = false;
  float brightness = 1, contrast = 1, saturation = 1;
};

TransformPlan plan_transform(int width, int height, const Preprocess& p, const Augment& a,
                             uint64_t rng_seed);

void check_preprocess(const Preprocess& p);

// From resampled 0..255 RGB values (size×size, interleaved) to the model's
// input: flip, colour jitter, (x - mean) * scale, in NCHW or NHWC order.
void finish_transform(const float* rgb, const TransformPlan& plan, const Preprocess& p, float* out);

}  // namespace graft::data
