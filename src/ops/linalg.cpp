// Matrix products: Gemm (Y = alpha * A' B' + beta * C) and MatMul (numpy's
// matmul: 1-D operands promoted to matrices, batch dimensions broadcast).
//
// Gradients: for Y = A B, dA = dY B^T and dB = A^T dY. Both are again
// matrix products, taken with matrix_product by reading an operand through
// transposed strides, then added into A's (B's) own layout.
#include <algorithm>
#include <type_traits>

#include "backend/backend.h"
#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

// Sums in double for floating types (more accurate than the recorded
// float32 results need) and in the element type for integers.
template <typename T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, T>;

// c[m x n] = a[m x k] * b[k x n] for one matrix of a batch, where element
// (i, p) of a is a[i * a_row + p * a_col] (so a transposed A is just other
// strides), and likewise for b.
template <typename T>
void matrix_product(const T* a, int64_t a_row, int64_t a_col, const T* b, int64_t b_row,
                    int64_t b_col, int64_t m, int64_t k, int64_t n, Accumulator<T>* c) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      Accumulator<T> sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += static_cast<Accumulator<T>>(a[i * a_row + p * a_col]) *
               static_cast<Accumulator<T>>(b[p * b_row + j * b_col]);
      c[i * n + j] = sum;
    }
}

constexpr std::initializer_list<DType> kProductTypes = {DType::kF32, DType::kF64, DType::kI32,
                                                        DType::kI64};

// --- Gemm --------------------------------------------------------------------

struct GemmDims {
  int64_t m, k, n;
  // Element (i, p) of A' (A, or A transposed) is a[i * a_row + p * a_col];
  // element (p, j) of B' is b[p * b_row + j * b_col].
  int64_t a_row, a_col, b_row, b_col;
};

GemmDims gemm_dims(const Node& node, const Shape& a, const Shape& b) {
  bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  GRAFT_CHECK(a.size() == 2 && b.size() == 2, kInvalidArgument,
              "Gemm needs two matrices, got shapes {} and {}", shape_str(a), shape_str(b));
  GemmDims d;
  d.m = ta ? a[1] : a[0];
  d.k = ta ? a[0] : a[1];
  d.n = tb ? b[0] : b[1];
  // A is stored m x k, or k x m when transposed; B k x n, or n x k.
  d.a_row = ta ? 1 : d.k;
  d.a_col = ta ? d.m : 1;
  d.b_row = tb ? 1 : d.n;
  d.b_col = tb ? d.k : 1;
  int64_t kb = tb ? b[1] : b[0];
  GRAFT_CHECK(d.k == kb, kInvalidArgument,
              "Gemm cannot multiply {} by {} (transA={}, transB={}): inner sizes {} and {} differ",
              shape_str(a), shape_str(b), ta, tb, d.k, kb);
  return d;
}

// dA' = alpha dY B'^T and dB' = alpha A'^T dY, each written back through the
// operand's (possibly transposed) layout; dC = beta dY summed over the axes C
// was broadcast along.
void gemm_backward(BackwardContext& c) {
  const Tensor& a = c.in(0);
  const Tensor& b = c.in(1);
  const Tensor& dy = c.grad_out(0);
  GemmDims g = gemm_dims(c.node, a.shape(), b.shape());
  double alpha = c.node.attr_float("alpha", 1.0f), beta = c.node.attr_float("beta", 1.0f);
  visit_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    if (c.wants_grad(0)) {
      // dY (m x n) times B'^T (n x k, whose (j, p) is B' (p, j)).
      std::vector<double> da(g.m * g.k);
      matrix_product(pdy, g.n, 1, b.data<T>(), g.b_col, g.b_row, g.m, g.n, g.k, da.data());
      T* pa = c.grad_in(0).data<T>();
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t p = 0; p < g.k; ++p)
          pa[i * g.a_row + p * g.a_col] += static_cast<T>(alpha * da[i * g.k + p]);
    }
    if (c.wants_grad(1)) {
      // A'^T (k x m, whose (p, i) is A' (i, p)) times dY (m x n).
      std::vector<double> db(g.k * g.n);
      matrix_product(a.data<T>(), g.a_col, g.a_row, pdy, g.n, 1, g.k, g.m, g.n, db.data());
      T* pb = c.grad_in(1).data<T>();
      for (int64_t p = 0; p < g.k; ++p)
        for (int64_t j = 0; j < g.n; ++j)
          pb[p * g.b_row + j * g.b_col] += static_cast<T>(alpha * db[p * g.n + j]);
    }
    if (c.wants_grad(2)) {
      Tensor& dc = c.grad_in(2);
      std::vector<int64_t> map = broadcast_index_map(dc.shape(), dy.shape());
      T* pc = dc.data<T>();
      for (int64_t i = 0; i < dy.numel(); ++i) pc[map[i]] += static_cast<T>(beta * pdy[i]);
    }
  });
}

OpDef gemm_op() {
  OpDef d;
  d.type = "Gemm";
  d.min_inputs = 2;
  d.max_inputs = 3;
  d.attributes = {"alpha", "beta", "transA", "transB", "broadcast"};
  d.infer = [](InferContext& c) {
    c.require_dtype(0, kProductTypes);
    c.check(c.dtype(1) == c.dtype(0), "A is {} but B is {}", dtype_name(c.dtype(0)),
            dtype_name(c.dtype(1)));
    GemmDims g = gemm_dims(c.node, c.shape(0), c.shape(1));
    Shape out{g.m, g.n};
    if (c.has_input(2)) {
      const Shape& cs = c.shape(2);
      c.check(c.dtype(2) == c.dtype(0), "C is {} but A is {}", dtype_name(c.dtype(2)),
              dtype_name(c.dtype(0)));
      // Before opset 7, C had to be exactly M x N unless broadcast=1.
      bool legacy_exact = c.opset < 7 && c.node.attr_int("broadcast", 0) == 0;
      bool fits = legacy_exact ? cs == out : broadcasts_to(cs, out);
      c.check(fits, "C of shape {} does not broadcast to the {} output", shape_str(cs),
              shape_str(out));
    }
    c.set_output(0, c.dtype(0), out);
  };
  d.fast_compute = backend::gemm_forward;
  d.fast_backward = backend::gemm_backward;
  d.compute = [](KernelContext& c) {
    const Tensor& a = c.in(0);
    const Tensor& b = c.in(1);
    Tensor& y = c.out(0);
    GemmDims g = gemm_dims(c.node, a.shape(), b.shape());
    double alpha = c.node.attr_float("alpha", 1.0f), beta = c.node.attr_float("beta", 1.0f);
    visit_numeric(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::vector<Accumulator<T>> ab(g.m * g.n);
      matrix_product(a.data<T>(), g.a_row, g.a_col, b.data<T>(), g.b_row, g.b_col, g.m, g.k, g.n,
                     ab.data());
      T* py = y.data<T>();
      for (int64_t i = 0; i < g.m * g.n; ++i) py[i] = static_cast<T>(alpha * ab[i]);
      if (!c.has_input(2)) return;
      const T* pc = c.in(2).data<T>();
      std::vector<int64_t> map = broadcast_index_map(c.in(2).shape(), y.shape());
      for (int64_t i = 0; i < g.m * g.n; ++i)
        py[i] = static_cast<T>(alpha * ab[i] + beta * static_cast<double>(pc[map[i]]));
    });
  };
  d.differentiable_inputs = {0, 1, 2};
  d.backward = gemm_backward;
  return d;
}

// --- MatMul ------------------------------------------------------------------

// MatMul operands as batches of matrices: a 1-D A is a 1 x K row, a 1-D B a
// K x 1 column (the added axis is dropped from the result).
struct MatMulPlan {
  Shape a_batch, b_batch, batch;
  int64_t m, k, n;
  Shape out;
};

MatMulPlan matmul_plan(const Shape& a, const Shape& b) {
  GRAFT_CHECK(!a.empty() && !b.empty(), kInvalidArgument,
              "MatMul needs operands of rank 1 or more, got shapes {} and {}", shape_str(a),
              shape_str(b));
  Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  MatMulPlan p;
  p.m = a2[a2.size() - 2];
  p.k = a2.back();
  p.n = b2.back();
  GRAFT_CHECK(p.k == b2[b2.size() - 2], kInvalidArgument,
              "MatMul cannot multiply {} by {}: inner sizes {} and {} differ", shape_str(a),
              shape_str(b), p.k, b2[b2.size() - 2]);
  p.a_batch.assign(a2.begin(), a2.end() - 2);
  p.b_batch.assign(b2.begin(), b2.end() - 2);
  p.batch = broadcast_shapes(p.a_batch, p.b_batch);
  p.out = p.batch;
  if (a.size() > 1) p.out.push_back(p.m);
  if (b.size() > 1) p.out.push_back(p.n);
  return p;
}

// Per matrix of the batch, dA = dY B^T and dB = A^T dY, added into the
// operand matrix it was broadcast from (so summed over broadcast batch axes).
// A 1-D operand's gradient has the same layout as its promoted matrix.
void matmul_backward(BackwardContext& c) {
  MatMulPlan p = matmul_plan(c.in(0).shape(), c.in(1).shape());
  std::vector<int64_t> a_map = broadcast_index_map(p.a_batch, p.batch);
  std::vector<int64_t> b_map = broadcast_index_map(p.b_batch, p.batch);
  visit_float(c.in(0).dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* a = c.in(0).data<T>();
    const T* b = c.in(1).data<T>();
    const T* dy = c.grad_out(0).data<T>();
    T* da = c.wants_grad(0) ? c.grad_in(0).data<T>() : nullptr;
    T* db = c.wants_grad(1) ? c.grad_in(1).data<T>() : nullptr;
    std::vector<double> product(std::max(p.m * p.k, p.k * p.n));
    for (size_t i = 0; i < a_map.size(); ++i) {
      const T* a_i = a + a_map[i] * p.m * p.k;
      const T* b_i = b + b_map[i] * p.k * p.n;
      const T* dy_i = dy + i * p.m * p.n;
      if (da) {  // dY (m x n) times B^T (n x k)
        matrix_product(dy_i, p.n, 1, b_i, 1, p.n, p.m, p.n, p.k, product.data());
        T* da_i = da + a_map[i] * p.m * p.k;
        for (int64_t j = 0; j < p.m * p.k; ++j) da_i[j] += static_cast<T>(product[j]);
      }
      if (db) {  // A^T (k x m) times dY (m x n)
        matrix_product(a_i, 1, p.k, dy_i, p.n, 1, p.k, p.m, p.n, product.data());
        T* db_i = db + b_map[i] * p.k * p.n;
        for (int64_t j = 0; j < p.k * p.n; ++j) db_i[j] += static_cast<T>(product[j]);
      }
    }
  });
}

OpDef matmul_op() {
  OpDef d;
  d.type = "MatMul";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    c.require_dtype(0, kProductTypes);
    c.check(c.dtype(1) == c.dtype(0), "A is {} but B is {}", dtype_name(c.dtype(0)),
            dtype_name(c.dtype(1)));
    c.set_output(0, c.dtype(0), matmul_plan(c.shape(0), c.shape(1)).out);
  };
  d.fast_compute = backend::matmul_forward;
  d.fast_backward = backend::matmul_backward;
  d.compute = [](KernelContext& c) {
    MatMulPlan p = matmul_plan(c.in(0).shape(), c.in(1).shape());
    std::vector<int64_t> a_map = broadcast_index_map(p.a_batch, p.batch);
    std::vector<int64_t> b_map = broadcast_index_map(p.b_batch, p.batch);
    visit_numeric(c.in(0).dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* a = c.in(0).data<T>();
      const T* b = c.in(1).data<T>();
      T* y = c.out(0).data<T>();
      std::vector<Accumulator<T>> product(p.m * p.n);
      for (size_t i = 0; i < a_map.size(); ++i) {
        matrix_product(a + a_map[i] * p.m * p.k, p.k, 1, b + b_map[i] * p.k * p.n, p.n, 1, p.m, p.k,
                       p.n, product.data());
        for (int64_t j = 0; j < p.m * p.n; ++j) y[i * p.m * p.n + j] = static_cast<T>(product[j]);
      }
    });
  };
  d.differentiable_inputs = {0, 1};
  d.backward = matmul_backward;
  return d;
}

}  // namespace

void register_linalg_ops(OpRegistry& r) {
  r.add(gemm_op());
  r.add(matmul_op());
}

}  // namespace graft::ops
