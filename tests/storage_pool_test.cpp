#include <gtest/gtest.h>

#include <algorithm>

#include "core/storage_pool.h"
#include "graft/tensor.h"

namespace graft {
namespace {

TEST(StoragePool, ReusesAFreedLargeBlockOfTheSameSize) {
  const size_t big = size_t{8} << 20;
  uint8_t* a = storage_pool::acquire(big);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  storage_pool::release(a, big);
  uint8_t* other = storage_pool::acquire(big + 64);  // another size: not that block
  EXPECT_NE(other, a);
  uint8_t* again = storage_pool::acquire(big);
  EXPECT_EQ(again, a);
  storage_pool::release(other, big + 64);
  storage_pool::release(again, big);
}

// Blocks of 2 MiB and more start on a 2 MiB boundary, so that they can lie
// on huge pages; the rounding up leaves the whole request usable.
TEST(StoragePool, LargeBlocksStartOnA2MiBBoundary) {
  const size_t odd = (size_t{3} << 20) + 64;
  uint8_t* a = storage_pool::acquire(odd);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % (size_t{2} << 20), 0u);
  std::fill_n(a, odd, uint8_t{1});
  EXPECT_EQ(a[odd - 1], 1);
  storage_pool::release(a, odd);
  uint8_t* small = storage_pool::acquire(size_t{1} << 20);  // pooled, below 2 MiB: 64-aligned only
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  storage_pool::release(small, size_t{1} << 20);
}

TEST(StoragePool, TensorsFromReusedBlocksStartZeroed) {
  const Shape shape{1024, 1024};  // 4 MiB: pooled
  const void* first = nullptr;
  {
    Tensor t(DType::kF32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 7.0f;
    first = t.raw();
  }
  Tensor u(DType::kF32, shape);
  EXPECT_EQ(u.raw(), first) << "the freed block was not reused";
  for (int64_t i = 0; i < u.numel(); i += 4099) ASSERT_EQ(u.data<float>()[i], 0.0f) << i;
}

}  // namespace
}  // namespace graft
