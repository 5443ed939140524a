// What graft's AVX-512 kernels share (depthwise_avx512.cpp,
// norm_planes_avx512.cpp): the target attribute, the width of a vector and
// the mask of a plane's last values. Include it first: its pragmas hold
// for the rest of the file.
#pragma once

// GCC 12's AVX-512 intrinsics warn that their own undefined vector
// (_mm512_undefined_ps) is used uninitialised, wherever they are inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#define GRAFT_AVX512 __attribute__((target("avx512f")))

namespace graft::backend::avx512 {

constexpr int64_t kLanes = 16;

// The lanes of the sixteen values from `at` that lie in [0, n).
GRAFT_AVX512 inline __mmask16 lanes_below(int64_t at, int64_t n) {
  const int64_t k = std::clamp<int64_t>(n - at, 0, kLanes);
  return static_cast<__mmask16>((1u << k) - 1);
}

}  // namespace graft::backend::avx512
