// Helpers of graft's own loop kernels (batch_norm.cpp, depthwise.cpp):
// OpenMP loops parallel over channels or planes, and per-plane loops
// vectorized with `omp simd`, each compiled for AVX-512, AVX2 and the
// baseline and picked for the machine at load time (target_clones).
// loop_threads is also the rule for the element-wise loops of Adam and of
// the gradients' sums (adam.cpp, backward.cpp).
#pragma once

#include <cstdint>

#include "graft/backend.h"

namespace graft::backend {

#define GRAFT_PLANE_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))

// Threads for a loop over `elements` values: one when too few to share.
inline int loop_threads(int64_t elements) { return elements < (1 << 16) ? 1 : num_threads(); }

}  // namespace graft::backend
