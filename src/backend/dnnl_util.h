// What every oneDNN kernel shares: the engine and a stream per thread, the
// switch to the reference kernels, the thread count, a cache of primitives
// built once per shape and attributes, scratch buffers for reordered
// copies, and helpers that describe graft's tensors to oneDNN.
//
// The style follows oneDNN's own examples: primitive descriptors are made
// once per case and kept (creating one costs tens of microseconds, more
// than a small op's run), backward descriptors take the forward one as a
// hint, and an op's run only wraps its tensors and executes.
#pragma once

#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <unordered_map>

#include "graft/graph.h"
#include "graft/tensor.h"

namespace graft::backend {

using dnnl::memory;
using Dims = memory::dims;

const dnnl::engine& engine();

// False when the reference kernels are forced.
bool enabled();
// Counts one op call served by a fast kernel.
void count_served();

// True when every given tensor is float32 (absent ones, nullptr, pass).
bool all_f32(std::initializer_list<const Tensor*> tensors);

// Row-major float32 descriptors: of `dims`, or with explicit strides.
memory::desc plain_md(const Dims& dims);
memory::desc strided_md(const Dims& dims, const Dims& strides);
// The same layout as `md` with every dim left open for oneDNN to choose
// (format_tag::any).
memory::desc any_md(const Dims& dims);

// A memory over existing storage (no copy).
memory wrap(const memory::desc& md, const void* data);
inline memory wrap(const memory::desc& md, const Tensor& t) { return wrap(md, t.raw()); }

// Scratch storage for a temporary memory. One buffer per slot and thread,
// grown as needed and reused by every op on that thread, so that reordered
// copies cost no allocation per op. Memories of different slots may be
// alive together; one op must not use a slot twice.
enum Slot {
  kSrcSlot,
  kWeightsSlot,
  kDstSlot,
  kDiffDstSlot,
  kDiffDst2Slot,
  kDiffSrcSlot,
  kDiffWeightsSlot,
  kDiffBiasSlot,
  kWorkspaceSlot,
  kExtraSlot,
  kScratchpadSlot,  // the primitives' own scratchpad (execute)
  kSlotCount
};
memory scratch(const memory::desc& md, Slot slot);

// The attributes every primitive is made with: its scratchpad is graft's
// (user mode), which execute() passes from this thread's scratch. In
// oneDNN's library mode each run allocates and frees its own, and the large
// ones come fresh from mmap: measured on a W3 step, 20k page faults per
// step before, 12k after.
dnnl::primitive_attr attributes();

// A primitive's rough run time on one core, in nanoseconds: what decides
// whether it is worth more threads.
int64_t macs_cost(int64_t multiply_adds);  // compute-bound: convolutions, products
int64_t elements_cost(int64_t elements);   // memory-bound: element-wise, reorders

// Runs a primitive made with attributes() on this thread's stream and waits
// for it. `cost` is its estimated run time on one thread: a parallel run far
// slower than that is taken as a sign of a busy machine (see cached_entry).
// The scratchpad is added to `args`.
void execute(const dnnl::primitive& p, std::unordered_map<int, memory>& args, int64_t cost);
inline void execute(const dnnl::primitive& p, std::unordered_map<int, memory>&& args, int64_t cost) {
  execute(p, args, cost);
}

// A copy between a tensor's plain layout and the layout a primitive chose;
// nothing when the two agree.
class Reorder {
 public:
  Reorder() = default;
  Reorder(const memory::desc& from, const memory::desc& to);
  bool needed() const { return prim_.has_value(); }
  // `from` in the target layout: `from` itself when no reorder is needed,
  // else a copy in scratch slot `slot`.
  memory to(const memory& from, Slot slot) const;
  // Copies `from` into `to` (when needed; otherwise `from` is `to`).
  void into(const memory& from, const memory& to) const;
  const memory::desc& source() const { return from_; }
  const memory::desc& target() const { return to_; }

 private:
  std::optional<dnnl::reorder> prim_;
  memory::desc from_, to_;
};

// The memory a primitive writes for a user tensor: the tensor itself when
// the layouts agree, else scratch in slot `slot` (then Reorder::into copies
// it back).
memory output_memory(const Reorder& back, const memory& user, Slot slot);

// The entry cached under `key` on this thread, built by `build` on first
// use. build() returns nullptr, or throws dnnl::error, when oneDNN cannot do
// the case; that is remembered too, and nullptr returned. Keys name the op
// and every shape and attribute the primitive depends on.
//
// oneDNN fixes a primitive's thread count when it is created, so the count
// is chosen here, from `cost` (the op's estimated run time on one thread,
// in ns), and is part of the key: one thread for small work, where waking
// the others costs more than it saves, and for a while after a stalled
// parallel run (execute); else graft's thread count (graft/backend.h). The
// choice also holds for the runs that follow.
std::shared_ptr<void> cached_entry(const std::string& key, int64_t cost,
                                   const std::function<std::shared_ptr<void>()>& build);
// The thread count cached_entry chooses for `cost`, made this thread's
// OpenMP count.
int choose_threads(int64_t cost);
// While one exists, this thread's primitives are made for and run on it
// alone: for work split across graft's threads by the caller. The thread's
// OpenMP count is restored when it ends.
class SerialScope {
 public:
  SerialScope();
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int threads_;
};

template <typename Entry>
std::shared_ptr<Entry> cached(const std::string& key, int64_t cost,
                              const std::function<std::shared_ptr<Entry>()>& build) {
  return std::static_pointer_cast<Entry>(
      cached_entry(key, cost, [&]() -> std::shared_ptr<void> { return build(); }));
}

// An element-wise function as oneDNN names it.
struct Eltwise {
  dnnl::algorithm alg;
  float alpha = 0, beta = 0;
  std::string key(const char* what, int64_t n) const {
    return fmt::format("{} {} {} {} {}", what, static_cast<int>(alg), alpha, beta, n);
  }
};
// The function of an activation node (Relu, LeakyRelu, Sigmoid, Tanh,
// HardSwish); nullopt for ops oneDNN lacks (eltwise.cpp).
std::optional<Eltwise> activation_of(const Node& node);
// y = f(x) element by element, float32 tensors of x's element count; false
// (nothing written) when oneDNN has no primitive for it.
bool run_eltwise(const Eltwise& f, const Tensor& x, Tensor& y);

// Dims for keys: "1x32x112x112".
std::string key_dims(const Dims& dims);
Dims to_dims(const Shape& shape);

}  // namespace graft::backend
