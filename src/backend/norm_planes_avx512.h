// BatchNormalization's plane sums and streamed plane loops (norm_planes.h)
// in AVX-512, for batch_norm.cpp on machines that have it (has_avx512): the
// same sums, their floats added in another order.
#pragma once

#include "backend/norm_planes.h"

namespace graft::backend::avx512 {

PlaneSums shifted_sums(const float* x, int64_t n, float k);
PlaneSums gradient_sums(const float* x, const float* dy, int64_t n, Affine f, float lo, float hi);
// normalize_plane and gradient_plane with streamed stores (Store::kStreamed).
void normalize_plane_streamed(const float* x, float* y, int64_t n, Affine f, float lo, float hi);
void gradient_plane_streamed(const float* x, const float* dy, float* dx, int64_t n, Affine f,
                             float lo, float hi, ChannelGradient g);

}  // namespace graft::backend::avx512
