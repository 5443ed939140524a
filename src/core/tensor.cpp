#include "graft/tensor.h"

#include "core/storage_pool.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace graft {

namespace {
std::atomic<size_t> g_max_tensor_bytes{size_t{16} << 30};
}

size_t max_tensor_bytes() { return g_max_tensor_bytes.load(); }
void set_max_tensor_bytes(size_t bytes) { g_max_tensor_bytes.store(bytes); }

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    GRAFT_CHECK(d >= 0, kInvalidArgument, "negative dimension {} in shape {}", d, shape_str(shape));
    GRAFT_CHECK(d == 0 || n <= INT64_MAX / d, kInvalidArgument,
                "shape {} has more elements than fit in 64 bits", shape_str(shape));
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

void check_dtype(DType actual, DType wanted) {
  GRAFT_CHECK(actual == wanted, kInternal, "tensor holds {}, accessed as {}", dtype_name(actual),
              dtype_name(wanted));
}

Tensor::Tensor(DType dtype, Shape shape) : Tensor(uninitialized(dtype, std::move(shape))) {
  std::memset(storage_.get(), 0, nbytes());
}

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  GRAFT_CHECK(t.numel_ == 0 || static_cast<size_t>(t.numel_) <= max_tensor_bytes() / dtype_size(dtype),
              kInvalidArgument, "a {} tensor of shape {} exceeds the {} MiB tensor size limit",
              dtype_name(dtype), shape_str(t.shape_), max_tensor_bytes() >> 20);
  size_t bytes = std::max<size_t>(64, (t.nbytes() + 63) / 64 * 64);
  uint8_t* p = storage_pool::acquire(bytes);
  GRAFT_CHECK(p != nullptr, kInvalidArgument, "out of memory allocating {} bytes for shape {}",
              bytes, shape_str(t.shape_));
#ifdef __SANITIZE_ADDRESS__
  std::memset(p, 0xFF, bytes);
#endif
  t.storage_ = std::shared_ptr<uint8_t>(p, [bytes](uint8_t* q) { storage_pool::release(q, bytes); });
  return t;
}

Tensor Tensor::over(std::shared_ptr<uint8_t> storage, DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.storage_ = std::move(storage);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t(dtype_, shape_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  GRAFT_CHECK(shape_numel(shape) == numel_, kInvalidArgument, "cannot reshape {} to {}",
              shape_str(shape_), shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

namespace {
template <typename To, typename From>
To convert(From v) {
  if constexpr (std::is_same_v<From, Half>) {
    return convert<To>(half_to_float(v));
  } else if constexpr (std::is_same_v<To, Half>) {
    return float_to_half(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From{};
  } else {
    return static_cast<To>(v);
  }
}
}  // namespace

Tensor Tensor::cast(DType to) const {
  Tensor out(to, shape_);
  visit_dtype(dtype_, [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(to, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* src = data<From>();
      To* dst = out.data<To>();
      for (int64_t i = 0; i < numel_; ++i) dst[i] = convert<To>(src[i]);
    });
  });
  return out;
}

}  // namespace graft
