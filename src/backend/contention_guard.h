// When a parallel primitive should run on one thread instead: the rule
// behind dnnl_util.cpp's execute() and choose_threads().
//
// OpenMP splits a primitive's work evenly among its threads and waits for
// the last one; with the default wait policy idle threads spin. On a
// machine busy with other work a thread of the team is often descheduled,
// and each parallel region then waits milliseconds for it: measured here
// with two compilers running, MobileNetV2 at batch 1 took 600 ms on two
// threads against 15 ms on one (OMP_WAIT_POLICY=PASSIVE avoids most of it,
// but libgomp reads it only from the environment at load). So parallel runs
// that stall like that, several within a short stretch, send the thread's
// next primitives to one thread for a while, after which two threads are
// tried again.
//
// - One stall alone is a passing hiccup on a shared machine: reacting to
//   each sent W1 at batch 1 to one thread for most of a benchmark (5.8 ms
//   against 3.2).
// - A primitive's first runs touch fresh memory and warm caches, and say
//   nothing about the machine. Counting its second run sent 1 benchmark in 6
//   of W1 at batch 8 to one thread (6.8 ms per image against 3.5).
// - A burst of stalls that passes should cost little: the first serial
//   stretch is about one MobileNetV2 forward pass, and it doubles only while
//   the stalls come back as soon as two threads are tried again.
#pragma once

#include <algorithm>
#include <cstdint>

namespace graft::backend {

class ContentionGuard {
 public:
  static constexpr int64_t kStallNs = 200'000;    // a wait this much beyond the estimate
  static constexpr int64_t kStallsToSerial = 3;   // stalls within kWindow runs
  static constexpr int64_t kWindow = 200;         // about one MobileNetV2 forward pass
  static constexpr int64_t kFirstSerial = 200;    // runs on one thread after the first trip
  static constexpr int64_t kLongestSerial = 3200; // about twenty forward passes
  static constexpr int kWarmingRuns = 3;          // a primitive's first runs, not counted

  // Counts a run; true while runs should use one thread.
  void count_run() { ++runs_; }
  bool serial() const { return runs_ < serial_until_; }

  // A parallel run of a primitive that took `ns` against its estimated
  // time on one thread, `cost` ns; `primitive_runs` counts that
  // primitive's runs, this one included.
  void record(int64_t ns, int64_t cost, int primitive_runs) {
    if (primitive_runs <= kWarmingRuns) return;
    // Slower than one thread would be by a scheduler's time slice: stalled.
    if (ns <= 4 * cost || ns - cost <= kStallNs) return;
    if (runs_ - first_stall_ > kWindow) {
      first_stall_ = runs_;
      stalls_ = 0;
    }
    if (++stalls_ < kStallsToSerial) return;
    const bool again_soon = serial_until_ > 0 && runs_ - serial_until_ <= kWindow;
    serial_runs_ = again_soon ? std::min(2 * serial_runs_, kLongestSerial) : kFirstSerial;
    serial_until_ = runs_ + serial_runs_;
    stalls_ = 0;
  }

 private:
  int64_t runs_ = 0;
  int64_t serial_until_ = 0;  // run count until which primitives use one thread
  int64_t serial_runs_ = 0;   // the length of the last serial stretch
  int64_t stalls_ = 0;        // stalls since run first_stall_
  int64_t first_stall_ = 0;
};

}  // namespace graft::backend
