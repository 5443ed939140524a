// Gradient rules of the binary arithmetic ops, against finite differences,
// for equal shapes, numpy broadcasting both ways, and legacy broadcasting.
#include "gradcheck.h"

using namespace graft;
using namespace graft::test;

namespace {

void check_binary(const std::string& op, Shape a, Shape b, double lo = -1, double hi = 1,
                  int opset = 13, std::map<std::string, Attribute> attrs = {}) {
  GradCheck gc{make_node(op, 2, 1, attrs), {random_tensor(a, 1, lo, hi), random_tensor(b, 2, lo, hi)}};
  gc.opset = opset;
  expect_gradients_match(gc);
}

}  // namespace

TEST(ElementwiseGrad, EveryOpAndBroadcast) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow"}) {
    double lo = 0.5, hi = 2;  // positive operands keep Div and Pow smooth
    check_binary(op, {2, 3}, {2, 3}, lo, hi);
    check_binary(op, {2, 3, 4}, {4}, lo, hi);        // b broadcast over leading axes
    check_binary(op, {3, 1}, {1, 4}, lo, hi);        // both broadcast
    check_binary(op, {1}, {2, 2}, lo, hi);           // a broadcast
    check_binary(op, {}, {3}, lo, hi);               // scalar
  }
}

TEST(ElementwiseGrad, LegacyBroadcastAtAxis) {
  check_binary("Add", {2, 3, 4}, {3}, -1, 1, 6, {{"broadcast", int64_t{1}}, {"axis", int64_t{1}}});
  check_binary("Mul", {2, 3, 4}, {3, 4}, -1, 1, 6, {{"broadcast", int64_t{1}}});
}
