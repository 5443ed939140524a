// Gradient rules of the pooling ops against finite differences:
// AveragePool (count_include_pad both ways, ceil_mode, pads, strides,
// dilations, every auto_pad, 1-D to 3-D), MaxPool (the same variants, and
// overlapping windows sharing a maximum), GlobalAveragePool and
// GlobalMaxPool.
#include <algorithm>
#include <numeric>

#include "gradcheck.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

// Values k * 0.07 - 1 for k = 0, 1, ... in shuffled order: no two elements
// are closer than 0.07, so no window has a tie and the ±1e-6 steps of the
// finite differences never change which element is a window's maximum
// (MaxPool is not differentiable where two candidates are equal).
Tensor distinct_tensor(Shape shape, uint32_t seed = 1) {
  Tensor t(DType::kF64, std::move(shape));
  std::vector<int64_t> order(t.numel());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = order[i] * 0.07 - 1;
  return t;
}

void check(const std::string& op, Shape x, Attrs attrs = {}, int n_outputs = 1, int opset = 13) {
  GradCheck gc{make_node(op, 1, n_outputs, std::move(attrs)), {distinct_tensor(std::move(x))}};
  gc.opset = opset;
  expect_gradients_match(gc);
}

// Runs `check` with count_include_pad 0 and 1 for AveragePool, once for MaxPool.
void check_both_pools(Shape x, Attrs attrs) {
  check("MaxPool", x, attrs);
  for (int64_t include : {0, 1}) {
    SCOPED_TRACE(include ? "count_include_pad=1" : "count_include_pad=0");
    Attrs a = attrs;
    a["count_include_pad"] = include;
    check("AveragePool", x, a);
  }
}

}  // namespace

TEST(PoolGrad, PlainWindows) {
  check_both_pools({2, 2, 4, 4}, {{"kernel_shape", Ints{2, 2}}});  // overlapping (stride 1)
  check_both_pools({1, 2, 4, 6}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}});
  check_both_pools({1, 2, 5, 5}, {{"kernel_shape", Ints{3, 2}}, {"strides", Ints{2, 3}}});
}

TEST(PoolGrad, Pads) {
  check_both_pools({1, 2, 4, 4}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}});
  // Asymmetric pads and strides: border windows cover fewer input elements.
  check_both_pools(
      {1, 2, 5, 4},
      {{"kernel_shape", Ints{3, 2}}, {"pads", Ints{1, 0, 2, 1}}, {"strides", Ints{2, 1}}});
}

TEST(PoolGrad, CeilMode) {
  // The last window along each axis runs past the input (and its padding).
  check_both_pools(
      {1, 2, 5, 6},
      {{"kernel_shape", Ints{2, 3}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}});
  check_both_pools({1, 2, 6, 5}, {{"kernel_shape", Ints{3, 3}},
                                  {"strides", Ints{2, 2}},
                                  {"pads", Ints{1, 1, 1, 0}},
                                  {"ceil_mode", int64_t{1}}});
  check_both_pools({1, 1, 8}, {{"kernel_shape", Ints{3}},
                               {"strides", Ints{3}},
                               {"pads", Ints{1, 1}},
                               {"ceil_mode", int64_t{1}}});
}

TEST(PoolGrad, Dilations) {
  check_both_pools({1, 2, 6, 6}, {{"kernel_shape", Ints{2, 2}}, {"dilations", Ints{2, 2}}});
  check_both_pools({1, 1, 7, 7}, {{"kernel_shape", Ints{2, 3}},
                                  {"dilations", Ints{3, 2}},
                                  {"strides", Ints{2, 1}},
                                  {"pads", Ints{1, 1, 0, 1}}});
}

TEST(PoolGrad, OneAndThreeDimensional) {
  check_both_pools({2, 2, 7}, {{"kernel_shape", Ints{3}}, {"strides", Ints{2}}});
  check_both_pools({1, 2, 3, 4, 4}, {{"kernel_shape", Ints{2, 2, 2}}});
  check_both_pools({1, 1, 4, 3, 5}, {{"kernel_shape", Ints{2, 2, 3}},
                                     {"strides", Ints{2, 1, 2}},
                                     {"pads", Ints{0, 1, 1, 1, 0, 1}}});
}

TEST(PoolGrad, EveryAutoPad) {
  // Odd sizes with stride 2 make SAME's padding asymmetric.
  for (const char* mode : {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"}) {
    SCOPED_TRACE(mode);
    check_both_pools(
        {1, 2, 5, 5},
        {{"kernel_shape", Ints{2, 3}}, {"strides", Ints{2, 2}}, {"auto_pad", std::string(mode)}});
    check_both_pools({1, 2, 7}, {{"kernel_shape", Ints{4}}, {"auto_pad", std::string(mode)}});
  }
}

TEST(PoolGrad, MaxPoolWithIndicesAndOlderOpsets) {
  // The Indices output carries no gradient; the values' gradient is unchanged.
  check("MaxPool", {1, 2, 4, 4}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}, 2);
  check("MaxPool", {1, 2, 4, 4}, {{"kernel_shape", Ints{2, 2}}, {"storage_order", int64_t{1}}}, 2,
        8);
  check("MaxPool", {1, 2, 4, 4}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}}, 1, 1);
  check("AveragePool", {1, 2, 4, 4}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}}, 1,
        7);
}

TEST(PoolGrad, GlobalPools) {
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    SCOPED_TRACE(op);
    check(op, {2, 3, 3, 4});
    check(op, {2, 3, 5});
    check(op, {1, 2, 2, 2, 3});
    check(op, {2, 3, 1, 1});  // a single element per plane
  }
}

namespace {

// Runs an op's gradient rule once on given values: the gradient of input 0.
Tensor backward_of(const std::string& op, Attrs attrs, const Tensor& x, const Tensor& dy,
                   const Tensor& y) {
  Node node = make_node(op, 1, 1, std::move(attrs));
  Tensor dx(x.dtype(), x.shape());
  ops::BackwardContext bc{node, 13, false, {&x}, {&y}, {&dy}, {&dx}};
  ops::run_backward(bc);
  return dx;
}

Tensor f64(Shape shape, std::vector<double> values) {
  Tensor t(DType::kF64, std::move(shape));
  std::copy(values.begin(), values.end(), t.data<double>());
  return t;
}

}  // namespace

TEST(PoolGrad, MaxPoolTiesGoToTheFirstInWindowOrder) {
  // Every 2x2 window holds several equal maxima; PyTorch's max_pool2d
  // backward on this input and dy gives exactly the expected dx.
  Tensor x = f64({1, 1, 3, 3}, {1, 1, 0, 1, 0, 1, 0, 1, 1});
  Tensor dy = f64({1, 1, 2, 2}, {1, 10, 100, 1000});
  Tensor y = f64({1, 1, 2, 2}, {1, 1, 1, 1});
  Tensor dx = backward_of("MaxPool", {{"kernel_shape", Ints{2, 2}}}, x, dy, y);
  EXPECT_EQ(dx.to_vector<double>(), (std::vector<double>{1, 10, 0, 100, 0, 1000, 0, 0, 0}));
  // GlobalMaxPool likewise: the whole plane is one window.
  Tensor flat = f64({1, 1, 1, 4}, {3, 3, 3, 3});
  Tensor one = f64({1, 1, 1, 1}, {1});
  Tensor three = f64({1, 1, 1, 1}, {3});
  EXPECT_EQ(backward_of("GlobalMaxPool", {}, flat, one, three).to_vector<double>(),
            (std::vector<double>{1, 0, 0, 0}));
}
