#include "backend/dnnl_util.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/contention_guard.h"
#include "graft/backend.h"
#include "graft/error.h"

namespace graft {

namespace {

// -1: not yet decided (the environment is read on first use).
std::atomic<int> g_reference{-1};
// 0: the default thread count.
std::atomic<int> g_threads{0};

bool reference_from_environment() {
  const char* v = std::getenv("GRAFT_REFERENCE_KERNELS");
  return v && std::strcmp(v, "1") == 0;
}

// OMP_NUM_THREADS when set (its first value), else the number of cores.
// Not omp_get_max_threads(): graft changes that setting per primitive.
int default_threads() {
  static const int n = [] {
    const char* v = std::getenv("OMP_NUM_THREADS");
    int from_env = v ? std::atoi(v) : 0;
    return from_env > 0 ? from_env : std::max(1, omp_get_num_procs());
  }();
  return n;
}

}  // namespace

void set_reference_kernels(bool on) { g_reference = on ? 1 : 0; }

bool reference_kernels() {
  int v = g_reference.load();
  if (v < 0) {
    int from_env = reference_from_environment() ? 1 : 0;
    g_reference.compare_exchange_strong(v, from_env);
    v = g_reference.load();
  }
  return v == 1;
}

void set_num_threads(int n) { g_threads = n > 0 ? n : 0; }

int num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

}  // namespace graft

namespace graft::backend {

namespace {

thread_local int64_t t_served = 0;

// Below this estimated run time (ns) a primitive runs on one thread.
constexpr int64_t kParallelCost = 30'000;

// Whether this thread's primitives run on one thread for a while
// (contention_guard.h).
thread_local ContentionGuard t_guard;

// Entries are kept until this many exist on a thread; then the cache starts
// over (a program that sees that many shapes is not in a steady loop).
constexpr size_t kCacheCapacity = 2048;

struct ScratchBuffer {
  std::unique_ptr<uint8_t, decltype(&std::free)> data{nullptr, &std::free};
  size_t size = 0;
};

dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

}  // namespace

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

bool enabled() { return !reference_kernels(); }

void count_served() { ++t_served; }

int64_t served_count() { return t_served; }

bool all_f32(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t && t->dtype() != DType::kF32) return false;
  return true;
}

Dims to_dims(const Shape& shape) { return Dims(shape.begin(), shape.end()); }

memory::desc strided_md(const Dims& dims, const Dims& strides) {
  return memory::desc(dims, memory::data_type::f32, strides);
}

memory::desc plain_md(const Dims& dims) {
  Dims strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return strided_md(dims, strides);
}

memory::desc any_md(const Dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

memory wrap(const memory::desc& md, const void* data) {
  return memory(md, engine(), const_cast<void*>(data));
}

namespace {

// This thread's buffer for `slot`, at least `bytes` long.
void* scratch_buffer(size_t bytes, Slot slot) {
  thread_local ScratchBuffer buffers[kSlotCount];
  ScratchBuffer& b = buffers[slot];
  if (bytes > b.size) {
    size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    b.data.reset(static_cast<uint8_t*>(std::aligned_alloc(64, rounded)));
    GRAFT_CHECK(b.data != nullptr, kInternal, "cannot allocate {} bytes of scratch", rounded);
    b.size = rounded;
  }
  return b.data.get();
}

}  // namespace

memory scratch(const memory::desc& md, Slot slot) {
  return memory(md, engine(), scratch_buffer(md.get_size(), slot));
}

int64_t macs_cost(int64_t multiply_adds) { return multiply_adds / 16; }  // ~32 GFLOP/s

int64_t elements_cost(int64_t elements) { return elements / 2; }  // ~8 GB/s in and out

dnnl::primitive_attr attributes() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void execute(const dnnl::primitive& p, std::unordered_map<int, memory>& args, int64_t cost) {
  // Per primitive on this thread: its runs up to the warming ones, and its
  // scratchpad's memory object (remade only when the buffer moves: making
  // one per run cost about 1 us, 2% of MobileNetV2 at batch 1).
  struct Record {
    int runs = 0;
    memory scratchpad;
  };
  thread_local std::unordered_map<const void*, Record> records;
  Record& r = records[p.get()];
  const dnnl_memory_desc_t* pad =
      dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  if (pad && pad->ndims > 0) {
    const memory::desc md(*pad);  // bytes, one dimension
    void* buffer = scratch_buffer(md.get_size(), kScratchpadSlot);
    if (!r.scratchpad || r.scratchpad.get_desc() != md || r.scratchpad.get_data_handle() != buffer)
      r.scratchpad = memory(md, engine(), buffer);
    args[DNNL_ARG_SCRATCHPAD] = r.scratchpad;
  }
  t_guard.count_run();
  dnnl::stream& s = thread_stream();
  auto start = std::chrono::steady_clock::now();
  try {
    p.execute(s, args);
    s.wait();
  } catch (const dnnl::error& e) {
    // Every case was checked when its primitive was built: a failure here
    // is a bug in graft, reported as one.
    fail(ErrorKind::kInternal, "oneDNN could not run a primitive: {}", e.what());
  }
  int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  if (r.runs <= ContentionGuard::kWarmingRuns) ++r.runs;
  if (omp_get_max_threads() > 1) t_guard.record(ns, cost, r.runs);
}

Reorder::Reorder(const memory::desc& from, const memory::desc& to) : from_(from), to_(to) {
  if (from != to)
    prim_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to, attributes()));
}

memory Reorder::to(const memory& from, Slot slot) const {
  if (!prim_) return from;
  memory out = scratch(to_, slot);
  execute(*prim_, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, out}}, elements_cost(to_.get_size() / 4));
  return out;
}

void Reorder::into(const memory& from, const memory& to) const {
  if (prim_)
    execute(*prim_, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}},
            elements_cost(from_.get_size() / 4));
}

memory output_memory(const Reorder& back, const memory& user, Slot slot) {
  // `back` goes from the primitive's layout to the user's: its source
  // layout is what the primitive writes.
  return back.needed() ? scratch(back.source(), slot) : user;
}

std::shared_ptr<void> cached_entry(const std::string& key, int64_t cost,
                                   const std::function<std::shared_ptr<void>()>& build) {
  thread_local std::unordered_map<std::string, std::shared_ptr<void>> cache;
  const int threads = choose_threads(cost);
  std::string full_key = key + " t" + std::to_string(threads);
  auto it = cache.find(full_key);
  if (it != cache.end()) return it->second;
  std::shared_ptr<void> entry;
  try {
    entry = build();
  } catch (const dnnl::error&) {
    entry = nullptr;  // oneDNN has no implementation for this case
  }
  if (cache.size() >= kCacheCapacity) cache.clear();
  cache.emplace(full_key, entry);
  return entry;
}

thread_local int t_serial_scopes = 0;
SerialScope::SerialScope() : threads_(omp_get_max_threads()) { ++t_serial_scopes; }
SerialScope::~SerialScope() {
  --t_serial_scopes;
  if (omp_get_max_threads() != threads_) omp_set_num_threads(threads_);
}

int choose_threads(int64_t cost) {
  // OpenMP's thread count is a per-thread setting: this thread's primitives
  // are created and run with it.
  bool serial = cost < kParallelCost || t_guard.serial() || t_serial_scopes > 0;
  int threads = serial ? 1 : num_threads();
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  return threads;
}

std::string key_dims(const Dims& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

}  // namespace graft::backend
