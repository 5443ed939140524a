// The fused normalise-depthwise-normalise step (backend.h) in two forms:
// plane by plane (norm_depthwise.cpp), and on small planes sixteen channels
// side by side (norm_depthwise_lanes.cpp).
#pragma once

#include "backend/depthwise_planes.h"

namespace graft::backend {

// The step's geometry: n images, `channels` planes of in_size values in,
// of out_size values out.
struct NormDepthwiseShape {
  Plane p;
  int64_t n, channels, taps;
  int64_t in_at(int64_t i, int64_t c) const { return (i * channels + c) * p.size(); }
  int64_t out_at(int64_t i, int64_t c) const { return (i * channels + c) * p.out_size(); }
};

// A tensor's floats, or nullptr for an absent one.
inline const float* data(const Tensor* t) { return t ? t->data<float>() : nullptr; }
inline float* data(Tensor* t) { return t ? t->data<float>() : nullptr; }

// Whether the planes are small enough for the lanes form.
bool runs_in_lanes(const Plane& p);

// The forward and backward passes in the lanes form: as
// norm_depthwise_forward and norm_depthwise_backward, without the running
// statistics' update.
void lanes_forward(const NormDepthwise& f, const NormDepthwiseInputs& in,
                   const NormDepthwiseShape& k, NormDepthwiseStatistics& st, Tensor& y);
void lanes_backward(const NormDepthwise& f, const BatchStatistics& before,
                    const BatchStatistics& after, const NormDepthwiseInputs& in,
                    const NormDepthwiseShape& k, const Tensor& dy,
                    const NormDepthwiseGradients& grads);

}  // namespace graft::backend
