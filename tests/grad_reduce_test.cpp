// Gradient rules of ReduceSum, ReduceMean and ReduceMax against finite
// differences, for axes as attribute and as input, negative axes, keepdims,
// reducing everything and noop_with_empty_axes; and ReduceMax's choice among
// tied maxima, which finite differences cannot check.
#include <cmath>
#include <limits>

#include "gradcheck.h"
#include "ops/op.h"

using namespace graft;
using namespace graft::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

Tensor axes(std::vector<int64_t> values) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values);
}

void check(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int opset = 13) {
  GradCheck gc{make_node(op, static_cast<int>(inputs.size()), 1, std::move(attrs)),
               std::move(inputs)};
  gc.opset = opset;
  expect_gradients_match(gc);
}

// Random values are distinct, so ReduceMax has one maximum per slot and a
// step of 1e-6 does not move it.
Tensor x() { return random_tensor({2, 3, 4}, 1, -2, 2); }

}  // namespace

TEST(ReduceGrad, AxesAsAttribute) {
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
    SCOPED_TRACE(op);
    int opset = std::string(op) == "ReduceSum" ? 11 : 13;  // axes an attribute before 13 / 18
    check(op, {x()}, {}, opset);                           // all axes
    check(op, {x()}, {{"axes", std::vector<int64_t>{1}}}, opset);
    check(op, {x()}, {{"axes", std::vector<int64_t>{-1}}}, opset);
    check(op, {x()}, {{"axes", std::vector<int64_t>{0, 2}}}, opset);
    check(op, {x()}, {{"axes", std::vector<int64_t>{-3, 1}}, {"keepdims", int64_t{0}}}, opset);
    check(op, {x()}, {{"keepdims", int64_t{0}}}, opset);  // to a scalar
    check(op, {x()}, {{"axes", std::vector<int64_t>{2}}}, 1);
  }
}

TEST(ReduceGrad, AxesAsInput) {
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
    SCOPED_TRACE(op);
    int opset = std::string(op) == "ReduceSum" ? 13 : 18;
    check(op, {x(), axes({1})}, {}, opset);
    check(op, {x(), axes({-1, 0})}, {}, opset);
    check(op, {x(), axes({2})}, {{"keepdims", int64_t{0}}}, opset);
    check(op, {x()}, {}, opset);                                                // no axes: all
    check(op, {x(), axes({})}, {}, opset);                                      // empty: all
    check(op, {x(), axes({})}, {{"noop_with_empty_axes", int64_t{1}}}, opset);  // none
    check(op, {x()}, {{"noop_with_empty_axes", int64_t{1}}, {"keepdims", int64_t{0}}}, opset);
  }
}

namespace {

// The gradient of ReduceMax over `axes_attr` of x, with dy flowing in.
std::vector<double> max_grad(const Tensor& x, std::vector<int64_t> axes_attr, const Tensor& dy) {
  Node node = make_node("ReduceMax", 1, 1, {{"axes", axes_attr}});
  Tensor dx(x.dtype(), x.shape());
  ops::BackwardContext bc{node, 13, false, {&x}, {nullptr}, {&dy}, {&dx}};
  ops::run_backward(bc);
  return dx.to_vector<double>();
}

}  // namespace

TEST(ReduceGrad, MaxTiesGoToTheFirstMaximum) {
  // Ties: the whole gradient goes to the first maximal element in row-major
  // order (the index torch.max(x, dim) returns); the others get none.
  Tensor x = Tensor::from_vector<double>({2, 4}, {1, 3, 3, 2,  //
                                                  5, 5, 5, 5});
  EXPECT_EQ(max_grad(x, {1}, Tensor::from_vector<double>({2, 1}, {10, 20})),
            (std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0}));
  // Along axis 0, per column.
  EXPECT_EQ(max_grad(x, {0}, Tensor::from_vector<double>({1, 4}, {1, 2, 3, 4})),
            (std::vector<double>{0, 0, 0, 0, 1, 2, 3, 4}));
  // float32, all axes: the first 5.
  EXPECT_EQ(max_grad(x.cast(DType::kF32), {0, 1}, Tensor::from_vector<float>({1, 1}, {7})),
            (std::vector<double>{0, 0, 0, 0, 7, 0, 0, 0}));
}

TEST(ReduceGrad, MaxOfNanGoesToTheFirstNan) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = Tensor::from_vector<double>({1, 4}, {1, nan, 9, nan});
  EXPECT_EQ(max_grad(x, {1}, Tensor::from_vector<double>({1, 1}, {3})),
            (std::vector<double>{0, 3, 0, 0}));
}

TEST(ReduceGrad, RulesRunInFloat32) {
  Tensor xd = x();
  Tensor xf = xd.cast(DType::kF32);
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
    SCOPED_TRACE(op);
    Node node = make_node(op, 1, 1, {{"axes", std::vector<int64_t>{1}}});
    Tensor dy = random_tensor({2, 1, 4}, 3);
    Tensor dyf = dy.cast(DType::kF32);
    Tensor dxd(DType::kF64, xd.shape()), dxf(DType::kF32, xf.shape());
    ops::BackwardContext wide{node, 11, false, {&xd}, {nullptr}, {&dy}, {&dxd}};
    ops::BackwardContext narrow{node, 11, false, {&xf}, {nullptr}, {&dyf}, {&dxf}};
    ops::run_backward(wide);
    ops::run_backward(narrow);
    std::vector<double> a = dxf.to_vector<double>(), b = dxd.to_vector<double>();
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-6);
  }
}
