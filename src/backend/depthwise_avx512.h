// The 3x3 depthwise plane kernels in AVX-512 (depthwise_avx512.cpp), for
// depthwise.cpp on machines that have it (has_avx512). They work on
// depthwise.cpp's padded copy of a plane's input: `rows` rows, each of
// p.sw parts of `part` floats (all columns, or the even then the odd ones),
// the input's column c at padded column c + pl, zeros around; aligned to 64
// bytes, part a multiple of sixteen, p.sw * part at most kMaxPaddedRow.
#pragma once

#include <cstdint>

#include "backend/depthwise_planes.h"

namespace graft::backend {

// The machine has AVX-512F (and GRAFT_NO_AVX512 is not set).
bool has_avx512();

namespace avx512 {

constexpr int64_t kMaxPaddedRow = 1024;

// padded = x, or map(x), laid out as above.
void pad(const Plane& p, int64_t rows, int64_t part, const float* x, const InputMap* map,
         float* padded);
// y = b + the 3x3 window sums of the padded input with kernel w.
void forward(const Plane& p, const float* padded, int64_t part, const float* w, float b, float* y);
// dw[t] += the sum of dy * the padded input under tap t; *db += the sum of
// dy (db may be nullptr).
void weights(const Plane& p, const float* padded, int64_t part, const float* dy, double* dw,
             double* db);

// The same forward and weight gradient without a padded copy, on planes
// whose output rows each fit seven vectors, at strides 1 or 2 with one row
// and column of zeros before (fits_unpadded): x, or map(x), read row by row.
bool fits_unpadded(const Plane& p);
void forward_unpadded(const Plane& p, const float* x, const InputMap* map, const float* w, float b,
                      float* y);
void weights_unpadded(const Plane& p, const float* x, const InputMap* map, const float* dy,
                      double* dw, double* db);

// dx of a 3x3 window at column stride 2 from dy and the kernel w (not
// turned): depthwise.cpp's backward_data_3x3_s2.
void backward_data_s2(const Plane& p, const float* dy, const float* w, float* dx);

}  // namespace avx512
}  // namespace graft::backend
