// The public switches of graft/backend.h: forcing the reference kernels and
// the fast kernels' thread count.
#include <thread>

#include "backend_test_util.h"

namespace graft::test {
namespace {

FastCase small_conv() {
  FastCase fc;
  fc.node = make_node("Conv", 2, 1, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  fc.inputs = {uniform({1, 4, 6, 6}, 1), uniform({4, 4, 3, 3}, 2)};
  return fc;
}

TEST(BackendSwitch, ReferenceKernelsCanBeForcedAndReleased) {
  PathResult forced = run_path(small_conv(), true);
  EXPECT_EQ(forced.forward_served + forced.backward_served, 0);
  PathResult fast = run_path(small_conv(), false);
  EXPECT_EQ(fast.forward_served + fast.backward_served, 2);
}

TEST(BackendSwitch, KernelPathRestoresTheSwitch) {
  bool before = reference_kernels();
  {
    KernelPath path(!before);
    EXPECT_EQ(reference_kernels(), !before);
  }
  EXPECT_EQ(reference_kernels(), before);
}

TEST(BackendSwitch, ThreadCountIsSettableAndResultsDoNotDependOnIt) {
  int cores = num_threads();
  EXPECT_GE(cores, 1);
  // A batch large enough that the primitives run on every thread.
  FastCase fc;
  fc.node = make_node("Conv", 3, 1, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  fc.inputs = {uniform({8, 16, 28, 28}, 1), uniform({32, 16, 3, 3}, 2), uniform({32}, 3)};
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  PathResult one = run_path(fc, false);
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  PathResult three = run_path(fc, false);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), cores);
  expect_same_results(three, one, 1e-5);
}

TEST(BackendSwitch, OtherThreadsRunTheFastKernelsToo) {
  // Primitives, streams and scratch are per thread.
  PathResult here = run_path(small_conv(), false);
  PathResult there;
  std::thread t([&] { there = run_path(small_conv(), false); });
  t.join();
  EXPECT_EQ(there.forward_served, 1);
  expect_same_results(there, here, 0);
}

}  // namespace
}  // namespace graft::test
