// BatchNormalization's per-channel loops in training (batch statistics),
// shared by the BatchNormalization kernels (batch_norm.cpp) and the fused
// normalise-depthwise-normalise step (norm_depthwise.cpp). A channel's
// values are n planes of `plane` floats, `stride` floats apart (NCHW:
// stride = channels * plane). The plane loops are vectorized float sums
// (loops.h), added up in double per plane. They are declared here without
// their target_clones attribute, so that callers in other files call the
// one resolved function rather than emit resolvers of their own (which the
// linker may keep in place of batch_norm.cpp's, with no clones to call).
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "backend/loops.h"

namespace graft::backend {

// Asks for the next image's plane of a channel while this one is worked
// on: the planes lie a whole image apart, too far for the hardware to guess
// (on a 576x14x14 block at batch 32, backward 12.7 -> 10.9 ms). Planes of
// more than 28x28 it streams well by itself: asking as well made the
// 56x56 and 112x112 blocks' backward 5% slower.
inline void prefetch_plane(const float* x, int64_t n) {
  if (n > 28 * 28) return;
  for (int64_t e = 0; e < n; e += 16) __builtin_prefetch(x + e, 0, 2);
}

struct PlaneSums {
  double first = 0, second = 0;
  PlaneSums& operator+=(const PlaneSums& o) {
    first += o.first;
    second += o.second;
    return *this;
  }
};

// One channel's batch statistics: mean and biased variance, computed as
// sums of x - k with k the channel's first value. Shifting by a value of the
// data keeps E[d^2] - E[d]^2 from cancelling catastrophically when the mean
// is large against the spread, and x - k is exact in float where x - mean
// (the mean rounded to float) would not be.
void channel_statistics(const float* x, int64_t n, int64_t stride, int64_t plane, int64_t c,
                        BatchStatistics& st);
// Channel c's statistics from the sums of x - k and (x - k)^2 over `count`
// values (the step channel_statistics ends with).
void set_statistics(BatchStatistics& st, int64_t c, float k, const PlaneSums& sums, double count);
BatchStatistics empty_statistics(int64_t channels);

// The normalised value of x as the forward computes it, a * (x - mean) +
// shift with x - mean as (x - k) - centre: backward recomputes it to know
// where the activation after it passed the gradient.
struct Affine {
  float k, centre, a, shift;
  float operator()(float x) const { return a * ((x - k) - centre) + shift; }
};
// Channel c's normalisation.
Affine affine_of(const BatchStatistics& st, int64_t c, const float* scale, const float* shift,
                 double epsilon);

// How the element-wise plane loops store their output: kCached for a plane
// read again at once (scratch), kStreamed for a step's output that later
// steps read only after much else has passed through the caches. Streamed,
// a plane of 56x56 or more on a machine with AVX-512 goes to memory in whole
// lines without each line first being fetched, as a plain store's is: the
// fused middles' forward at 112x112 and 56x56, batch 32, 8-19% faster, W3's
// step 1.5-2.5%. The depthwise step's input gradient, written over its
// input, stays cached: the convolution before reads it next (streamed, the
// step was 2.5-3.5% slower).
enum class Store { kCached, kStreamed };
inline bool streams(Store store, int64_t n) { return store == Store::kStreamed && n >= 56 * 56; }

// y = clamp(f(x), lo, hi).
void normalize_plane(const float* x, float* y, int64_t n, Affine f, float lo, float hi,
                     Store store);
// The gradient reaching the normalised value z: dy where the activation
// after it passed it (lo <= z <= hi, as Clip's gradient), else 0.
inline float passed(float dy, float z, float lo, float hi) { return z >= lo && z <= hi ? dy : 0.0f; }

// Sum of g and of g * (x - mean), g the gradient dy passed where
// lo <= f(x) <= hi (the activation's gradient).
PlaneSums gradient_sums(const float* x, const float* dy, int64_t n, Affine f, float lo,
                        float hi);

// Channel c's input gradient from the sums of gradient_sums over all its
// planes: dx = q * (x - mean) + b * g + r. Also dscale and dshift.
struct ChannelGradient {
  float q, b, r;
  double dscale, dshift;
};
ChannelGradient channel_gradient(const BatchStatistics& st, int64_t c, double count, float scale,
                                 double epsilon, PlaneSums sums);
// dx = q * (x - mean) + b * g + r; dx may be dy (in place).
void gradient_plane(const float* x, const float* dy, float* dx, int64_t n, Affine f, float lo,
                    float hi, ChannelGradient g, Store store);

// out = running * momentum + batch * factor * (1 - momentum).
void update_running(Tensor* out, const Tensor& running, const double* batch, double factor,
                    double momentum);
// The running statistics updated in place from the batch's, of `count`
// values per channel (unbiased variance, as PyTorch).
void update_running(const NormActivation& f, const BatchStatistics& st, int64_t count,
                    Tensor& running_mean, Tensor& running_var);

}  // namespace graft::backend
