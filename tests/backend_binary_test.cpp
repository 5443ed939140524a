// Add, Sub and Mul of same-shape float32 tensors on oneDNN against the
// reference kernels; broadcasting and other dtypes stay on the reference.
#include "backend_test_util.h"

namespace graft::test {
namespace {

TEST(BackendBinary, SameShapeMatchesReference) {
  for (const char* op : {"Add", "Sub", "Mul"}) {
    for (Shape shape : {Shape{2, 16, 9, 9}, Shape{7}, Shape{3, 1000}}) {
      SCOPED_TRACE(::testing::Message() << op << " " << shape_str(shape));
      FastCase fc;
      fc.node = make_node(op, 2, 1);
      fc.inputs = {uniform(shape, 1, -3, 3), uniform(shape, 2, -3, 3)};
      fc.tolerance = 1e-6;
      expect_fast_matches_reference(fc);
      // One gradient at a time (a frozen operand): only that one is written.
      for (int wanted : {0, 1}) {
        fc.wanted = {wanted};
        expect_fast_matches_reference(fc);
      }
    }
  }
}

TEST(BackendBinary, BroadcastsOtherOpsAndDtypesStayOnTheReference) {
  FastCase broadcast;
  broadcast.node = make_node("Add", 2, 1);
  broadcast.inputs = {uniform({2, 3, 4}, 1), uniform({3, 1}, 2)};
  expect_served(broadcast, false, false);

  FastCase div;
  div.node = make_node("Div", 2, 1);
  div.inputs = {uniform({2, 3}, 1), uniform({2, 3}, 2, 1, 2)};
  expect_served(div, false, false);

  FastCase f64;
  f64.node = make_node("Mul", 2, 1);
  f64.inputs = {uniform({2, 3}, 1).cast(DType::kF64), uniform({2, 3}, 2).cast(DType::kF64)};
  expect_served(f64, false, false);
}

}  // namespace
}  // namespace graft::test
