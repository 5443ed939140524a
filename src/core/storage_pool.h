// Where large tensor storage comes from. glibc serves big allocations with
// mmap and unmaps them on free, so a training step that allocates and frees
// the same activation-sized buffers every step pays for fresh zeroed pages
// each time (measured here: a third of a MobileNetV2 training step at batch
// 32). The pool keeps freed large blocks and hands them out again for a
// request of the same size.
#pragma once

#include <cstddef>
#include <cstdint>

namespace graft::storage_pool {

// 64-byte aligned, at least `bytes` (a multiple of 64); nullptr when out of
// memory. Not zeroed.
uint8_t* acquire(size_t bytes);
// Returns a block acquire() gave, of the same `bytes`.
void release(uint8_t* block, size_t bytes);

}  // namespace graft::storage_pool
