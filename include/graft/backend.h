// Where graft's ops run. Every op has a reference kernel (plain C++, one
// thread). For float32 Conv, BatchNormalization, pooling, Gemm/MatMul,
// activations and Softmax there are also fast kernels from oneDNN, used
// whenever oneDNN can do the case at hand; the rest, and any case oneDNN
// cannot do (another dtype, an attribute it lacks), run the reference
// kernel. Both compute the same function up to float rounding.
#pragma once

namespace graft {

// Forces every op onto its reference kernel (true), or lets ops use the
// fast kernels (false). The default is false unless the environment
// variable GRAFT_REFERENCE_KERNELS is set to 1 (read once, when graft
// first asks). Process-wide; applies from the next op that runs.
void set_reference_kernels(bool on);
bool reference_kernels();

// How many threads the fast kernels use (the reference kernels use one).
// n <= 0 restores the default: OMP_NUM_THREADS when set, else the number of
// cores. Process-wide; applies from the next op that runs.
void set_num_threads(int n);
int num_threads();

}  // namespace graft
