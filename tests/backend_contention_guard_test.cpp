// The rule that sends primitives to one thread on a busy machine
// (src/backend/contention_guard.h), on made-up run times.
#include "backend/contention_guard.h"

#include <gtest/gtest.h>

namespace graft::backend {
namespace {

using G = ContentionGuard;
constexpr int64_t kCost = 100'000;                  // a primitive's estimate, ns
constexpr int64_t kStalled = kCost + 5'000'000;      // a scheduler's time slice late
constexpr int64_t kOnTime = kCost / 2;               // two threads, as planned
constexpr int kWarm = G::kWarmingRuns + 1;           // a primitive past its first runs

// `n` runs of warm primitives taking `ns` each; true if any ran serial.
bool runs(G& g, int n, int64_t ns) {
  bool any_serial = false;
  for (int i = 0; i < n; ++i) {
    g.count_run();
    any_serial = any_serial || g.serial();
    g.record(ns, kCost, kWarm);
  }
  return any_serial;
}

TEST(ContentionGuard, ParallelRunsOnTimeStayParallel) {
  G g;
  EXPECT_FALSE(runs(g, 10'000, kOnTime));
}

TEST(ContentionGuard, SeveralStallsInAPassSendRunsToOneThreadForAWhile) {
  G g;
  runs(g, G::kStallsToSerial - 1, kStalled);
  EXPECT_FALSE(g.serial());
  runs(g, 1, kStalled);
  EXPECT_TRUE(g.serial());
  runs(g, G::kFirstSerial, kOnTime);
  EXPECT_FALSE(g.serial());  // two threads are tried again
}

TEST(ContentionGuard, StallsFarApartAreHiccups) {
  G g;
  for (int i = 0; i < 20; ++i) {
    runs(g, 1, kStalled);
    EXPECT_FALSE(runs(g, G::kWindow, kOnTime));
  }
}

TEST(ContentionGuard, APrimitivesFirstRunsDoNotCount) {
  G g;
  for (int r = 1; r <= G::kWarmingRuns; ++r)
    for (int i = 0; i < 2 * G::kStallsToSerial; ++i) {
      g.count_run();
      g.record(kStalled, kCost, r);
    }
  EXPECT_FALSE(g.serial());
}

TEST(ContentionGuard, SlowButNotStalledRunsDoNotCount) {
  G g;
  // Four times the estimate, or less than a time slice beyond it.
  EXPECT_FALSE(runs(g, 100, 4 * kCost));
  EXPECT_FALSE(runs(g, 100, kCost + G::kStallNs));
}

// Counts the serial runs of a stretch that starts with a trip.
int64_t serial_stretch(G& g) {
  runs(g, G::kStallsToSerial, kStalled);
  int64_t n = 0;
  while (g.serial()) {
    ++n;
    runs(g, 1, kOnTime);
  }
  return n;
}

TEST(ContentionGuard, LastingContentionLengthensTheSerialStretches) {
  G g;
  int64_t previous = serial_stretch(g);
  EXPECT_LE(previous, G::kFirstSerial + 1);
  for (int i = 0; i < 8; ++i) {
    const int64_t next = serial_stretch(g);  // stalls again as soon as two threads are back
    EXPECT_GE(next, std::min(2 * previous - 2, G::kLongestSerial - 2));
    EXPECT_LE(next, G::kLongestSerial + 1);
    previous = next;
  }
  EXPECT_GE(previous, G::kLongestSerial - 2);
  // A quiet stretch between trips starts over from the shortest.
  runs(g, 10 * G::kWindow, kOnTime);
  EXPECT_LE(serial_stretch(g), G::kFirstSerial + 1);
}

}  // namespace
}  // namespace graft::backend
