#include "core/storage_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace graft::storage_pool {

namespace {

// Smaller blocks come from malloc's own free lists, which reuse them well.
constexpr size_t kPooledFrom = size_t{1} << 20;
// Free blocks are kept up to twice the most that was ever in use at once (a
// training step's working set), at least this much; beyond it the oldest
// go back to the system. Blocks are reused only for a request of their own
// size, so a step needs more kept than its working set: with exactly the
// working set, MobileNetV2's W3 step missed 31 times (500 MB of fresh pages)
// every step, and ran 20% slower.
constexpr size_t kMinKept = size_t{1} << 30;

// Blocks of 2 MiB and more are asked to lie on 2 MiB pages (transparent
// huge pages, where the kernel gives them on request): the kernels walk
// planes a whole image apart, each on a page of its own, and on 4 KiB
// pages every such step is a TLB miss.
constexpr size_t kHugePage = size_t{2} << 20;

uint8_t* fresh(size_t bytes) {
  if (bytes < kHugePage) return static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* block = std::aligned_alloc(kHugePage, rounded);
  if (block) ::madvise(block, rounded, MADV_HUGEPAGE);  // advice only: 4 KiB pages otherwise
  return static_cast<uint8_t*>(block);
}

class Pool {
 public:
  uint8_t* acquire(size_t bytes) {
    if (bytes >= kPooledFrom) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        uint8_t* block = it->second.back().first;
        age_.erase(it->second.back().second);
        it->second.pop_back();
        kept_ -= bytes;
        in_use(bytes);
        return block;
      }
    }
    uint8_t* block = fresh(bytes);
    if (block && bytes >= kPooledFrom) {
      std::lock_guard<std::mutex> lock(mutex_);
      in_use(bytes);
    }
    return block;
  }

  void release(uint8_t* block, size_t bytes) {
    if (bytes < kPooledFrom) return std::free(block);
    std::lock_guard<std::mutex> lock(mutex_);
    used_ -= bytes;
    age_.push_back({block, bytes});
    free_[bytes].push_back({block, std::prev(age_.end())});
    kept_ += bytes;
    while (kept_ > std::max(kMinKept, 2 * peak_used_)) {  // drop the oldest
      auto [old, size] = age_.front();
      auto& same = free_[size];
      for (auto it = same.begin(); it != same.end(); ++it)
        if (it->first == old) {
          same.erase(it);
          break;
        }
      age_.pop_front();
      kept_ -= size;
      std::free(old);
    }
  }

 private:
  void in_use(size_t bytes) {
    used_ += bytes;
    peak_used_ = std::max(peak_used_, used_);
  }

  using Age = std::list<std::pair<uint8_t*, size_t>>;
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<std::pair<uint8_t*, Age::iterator>>> free_;
  Age age_;  // free blocks, oldest first
  size_t kept_ = 0;
  size_t used_ = 0, peak_used_ = 0;  // pooled-size blocks handed out
};

// Never destroyed: tensors freed during static destruction still return here.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

uint8_t* acquire(size_t bytes) { return pool().acquire(bytes); }
void release(uint8_t* block, size_t bytes) { pool().release(block, bytes); }

}  // namespace graft::storage_pool
