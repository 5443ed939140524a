// NumPy .npy files (format versions 1-3, C order, little-endian), the
// command line's way to pass tensors in and out.
#pragma once

#include <string>

#include "graft/tensor.h"

namespace graft {

// Reads a .npy file of float32/float64/float16/int64/int32/int8/uint8/bool.
// Fortran order, big-endian data and object arrays are clear errors.
Tensor load_npy(const std::string& path);

// Writes a tensor as .npy, atomically (temporary file, then rename).
void save_npy(const std::string& path, const Tensor& t);

}  // namespace graft
