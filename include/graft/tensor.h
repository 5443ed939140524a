// A dense, contiguous, 64-byte-aligned n-dimensional array. Copies share the
// storage (like a shared_ptr); clone() makes a deep copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graft/dtype.h"
#include "graft/error.h"

namespace graft {

using Shape = std::vector<int64_t>;

// Product of the dimensions. Throws kInvalidArgument on a negative dimension
// or when the product overflows int64.
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "1x3x224x224", "scalar"

// The largest tensor graft will allocate, in bytes (default 16 GiB); larger
// requests, e.g. from a malformed model, fail with a clear error instead.
size_t max_tensor_bytes();
void set_max_tensor_bytes(size_t bytes);

class Tensor {
 public:
  Tensor() = default;  // undefined: no dtype, no storage

  // Zero-filled tensor.
  Tensor(DType dtype, Shape shape);
  // A tensor whose contents are unspecified, for a kernel that writes every
  // element (zero-filling an activation costs as much as a cheap op). Under
  // AddressSanitizer the bytes are 0xFF (a float NaN), so a kernel that
  // leaves some unwritten fails its tests there.
  static Tensor uninitialized(DType dtype, Shape shape);
  // A tensor over storage owned elsewhere (a slice of an execution plan's
  // arena), which `storage` keeps alive; it must hold nbytes(). Not zeroed.
  static Tensor over(std::shared_ptr<uint8_t> storage, DType dtype, Shape shape);

  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  template <typename T>
  static Tensor scalar(T value) { return from_vector<T>({}, {value}); }

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + rank() : i); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }
  // Typed access; throws kInternal when T does not match dtype().
  template <typename T> T* data();
  template <typename T> const T* data() const;
  // Copies the elements out as T (numeric conversion).
  template <typename T> std::vector<T> to_vector() const;

  // Whether another Tensor holds this one's storage (a write through one
  // shows through the other).
  bool shares_storage() const { return storage_.use_count() > 1; }

  Tensor clone() const;
  // Same storage, another shape with the same number of elements.
  Tensor reshaped(Shape shape) const;
  // Element-wise conversion to another dtype.
  Tensor cast(DType to) const;

 private:
  std::shared_ptr<uint8_t> storage_;
  DType dtype_ = DType::kF32;
  Shape shape_;
  int64_t numel_ = 0;
};

// --- implementation of the templates ---------------------------------------

void check_dtype(DType actual, DType wanted);

template <typename T>
T* Tensor::data() {
  check_dtype(dtype_, dtype_of<T>());
  return reinterpret_cast<T*>(storage_.get());
}
template <typename T>
const T* Tensor::data() const {
  check_dtype(dtype_, dtype_of<T>());
  return reinterpret_cast<const T*>(storage_.get());
}

template <typename T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t(dtype_of<T>(), std::move(shape));
  GRAFT_CHECK(static_cast<int64_t>(values.size()) == t.numel(), kInvalidArgument,
              "tensor of shape {} needs {} values, got {}", shape_str(t.shape()), t.numel(),
              values.size());
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = dtype_ == dtype_of<T>() ? *this : cast(dtype_of<T>());
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace graft
