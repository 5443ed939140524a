// Gemm and MatMul on oneDNN's matmul primitive, forward and backward.
//
// A transposed operand is the same storage read through swapped strides,
// which oneDNN's matmul takes directly, so no copy is made. The backward
// products are matmuls again (dA = dY B^T, dB = A^T dY), each set up so
// that it writes its result in the operand's own layout.
//
// Every primitive an op needs is built before any runs: a case oneDNN
// cannot do then declines with nothing written.
#include <algorithm>
#include <optional>

#include "backend/backend.h"
#include "backend/dnnl_util.h"

namespace graft::backend {

namespace {

// A (batch of) matrix as oneDNN sees it: dims with the batch axes first,
// and the strides of the storage it is read from or written to.
struct Mat {
  Dims dims, strides;
};

// Row-major storage of `dims`.
Mat plain(const Dims& dims) {
  Mat m{dims, Dims(dims.size(), 1)};
  for (size_t i = dims.size(); i-- > 1;) m.strides[i - 1] = m.strides[i] * dims[i];
  return m;
}

// The same storage read as the transpose of its last two axes.
Mat transposed(const Mat& m) {
  Mat t = m;
  size_t r = m.dims.size();
  std::swap(t.dims[r - 1], t.dims[r - 2]);
  std::swap(t.strides[r - 1], t.strides[r - 2]);
  return t;
}

std::string key_mat(const Mat& m) { return key_dims(m.dims) + "/" + key_dims(m.strides); }

// dst = scale * src . weights (+ bias).
struct MatmulCase {
  Mat src, weights, dst;
  std::optional<Mat> bias = std::nullopt;
  float scale = 1;

  std::string key() const {
    return fmt::format("matmul {} {} {} {} {}", key_mat(src), key_mat(weights), key_mat(dst),
                       bias ? key_mat(*bias) : "-", scale);
  }
};

struct MatmulEntry {
  int64_t cost = 0;
  dnnl::matmul prim;
  memory::desc src, weights, dst, bias;
};

std::shared_ptr<MatmulEntry> matmul_entry(const MatmulCase& k) {
  int64_t cost =
      macs_cost(shape_numel(Shape(k.dst.dims.begin(), k.dst.dims.end())) * k.src.dims.back());
  return cached<MatmulEntry>(k.key(), cost, [&] {
    auto e = std::make_shared<MatmulEntry>();
    e->cost = cost;
    e->src = strided_md(k.src.dims, k.src.strides);
    e->weights = strided_md(k.weights.dims, k.weights.strides);
    e->dst = strided_md(k.dst.dims, k.dst.strides);
    if (k.bias) e->bias = strided_md(k.bias->dims, k.bias->strides);
    dnnl::primitive_attr attr = attributes();
    if (k.scale != 1) attr.set_output_scales(0, {k.scale});
    dnnl::matmul::desc desc = k.bias ? dnnl::matmul::desc(e->src, e->weights, e->bias, e->dst)
                                     : dnnl::matmul::desc(e->src, e->weights, e->dst);
    e->prim = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, engine()));
    return e;
  });
}

void run(const MatmulEntry& e, const void* src, const void* weights, void* dst,
         const void* bias = nullptr) {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(e.src, src)},
                                       {DNNL_ARG_WEIGHTS, wrap(e.weights, weights)},
                                       {DNNL_ARG_DST, wrap(e.dst, dst)}};
  if (bias) args[DNNL_ARG_BIAS] = wrap(e.bias, bias);
  execute(e.prim, args, e.cost);
}

// --- Gemm ----------------------------------------------------------------------

// Y = alpha * A' B' + beta * C with A' = A or A^T (transA), B' likewise.
struct GemmCase {
  Mat a, b;  // A' (m x k) and B' (k x n) over A's and B's storage
  int64_t m, k, n;
  float alpha, beta;
};

std::optional<GemmCase> gemm_case(const Node& node, const Tensor& a, const Tensor& b) {
  if (a.rank() != 2 || b.rank() != 2 || a.numel() == 0 || b.numel() == 0) return std::nullopt;
  GemmCase g;
  g.a = plain(to_dims(a.shape()));
  g.b = plain(to_dims(b.shape()));
  if (node.attr_int("transA", 0) != 0) g.a = transposed(g.a);
  if (node.attr_int("transB", 0) != 0) g.b = transposed(g.b);
  g.m = g.a.dims[0];
  g.k = g.a.dims[1];
  g.n = g.b.dims[1];
  g.alpha = node.attr_float("alpha", 1.0f);
  g.beta = node.attr_float("beta", 1.0f);
  return g;
}

// C as a bias of dims (m or 1) x (n or 1): it broadcasts to Y unidirectionally.
Mat gemm_bias(const Shape& c) {
  Dims d{1, 1};
  if (c.size() == 2) d = {c[0], c[1]};
  if (c.size() == 1) d = {1, c[0]};
  return plain(d);
}

}  // namespace

bool gemm_forward(const ops::KernelContext& c) {
  const Tensor* bias = c.has_input(2) ? &c.in(2) : nullptr;
  if (!enabled() || !all_f32({&c.in(0), &c.in(1), bias})) return false;
  std::optional<GemmCase> g = gemm_case(c.node, c.in(0), c.in(1));
  if (!g) return false;
  // oneDNN would scale the bias with alpha too; that rare mix declines.
  if (bias && g->alpha != 1) return false;
  MatmulCase k{g->a, g->b, plain({g->m, g->n})};
  k.scale = g->alpha;
  if (bias) k.bias = gemm_bias(bias->shape());
  auto e = matmul_entry(k);
  if (!e) return false;
  const void* bias_data = bias ? bias->raw() : nullptr;
  if (bias && g->beta != 1) {
    memory scaled = scratch(e->bias, kExtraSlot);
    float* s = static_cast<float*>(scaled.get_data_handle());
    const float* from = bias->data<float>();
    for (int64_t i = 0; i < bias->numel(); ++i) s[i] = g->beta * from[i];
    bias_data = s;
  }
  run(*e, c.in(0).raw(), c.in(1).raw(), c.out(0).raw(), bias_data);
  count_served();
  return true;
}

// dA' = alpha dY B'^T and dB' = alpha A'^T dY, each computed in its
// operand's storage order: when transA, dA = (dA')^T = alpha B' dY^T.
bool gemm_backward(const ops::BackwardContext& c) {
  if (!enabled() || !c.has_grad_output(0)) return false;
  if (!c.wants_grad(0) && !c.wants_grad(1) && !c.wants_grad(2)) return false;
  const Tensor& a = c.in(0);
  const Tensor& b = c.in(1);
  const Tensor& dy = c.grad_out(0);
  if (!all_f32({&a, &b, &dy})) return false;
  std::optional<GemmCase> g = gemm_case(c.node, a, b);
  if (!g) return false;
  bool ta = c.node.attr_int("transA", 0) != 0, tb = c.node.attr_int("transB", 0) != 0;
  Mat dy_m = plain({g->m, g->n});
  std::shared_ptr<MatmulEntry> da, db;
  if (c.wants_grad(0)) {
    MatmulCase k = ta ? MatmulCase{g->b, transposed(dy_m), plain({g->k, g->m})}
                      : MatmulCase{dy_m, transposed(g->b), plain({g->m, g->k})};
    k.scale = g->alpha;
    if (!(da = matmul_entry(k))) return false;
  }
  if (c.wants_grad(1)) {
    MatmulCase k = tb ? MatmulCase{transposed(dy_m), g->a, plain({g->n, g->k})}
                      : MatmulCase{transposed(g->a), dy_m, plain({g->k, g->n})};
    k.scale = g->alpha;
    if (!(db = matmul_entry(k))) return false;
  }
  if (da) {
    if (ta)
      run(*da, b.raw(), dy.raw(), c.grad_in(0).raw());
    else
      run(*da, dy.raw(), b.raw(), c.grad_in(0).raw());
  }
  if (db) {
    if (tb)
      run(*db, dy.raw(), a.raw(), c.grad_in(1).raw());
    else
      run(*db, a.raw(), dy.raw(), c.grad_in(1).raw());
  }
  if (c.wants_grad(2)) {
    // dC = beta dY summed over the axes C was broadcast along: a small sum.
    Tensor& dc = c.grad_in(2);
    Dims cd = gemm_bias(dc.shape()).dims;
    const float* pdy = dy.data<float>();
    float* pc = dc.data<float>();
    std::fill_n(pc, dc.numel(), 0.0f);
    for (int64_t i = 0; i < g->m; ++i)
      for (int64_t j = 0; j < g->n; ++j)
        pc[(cd[0] == 1 ? 0 : i) * cd[1] + (cd[1] == 1 ? 0 : j)] += g->beta * pdy[i * g->n + j];
  }
  count_served();
  return true;
}

namespace {

// --- MatMul --------------------------------------------------------------------

// numpy's matmul: a 1-D A is a 1 x K row, a 1-D B a K x 1 column, and batch
// axes broadcast. All three operands get the same rank (leading 1s), as
// oneDNN asks.
struct MatMulCase {
  Mat a, b, y;
  bool a_broadcast = false, b_broadcast = false;  // batch wholly broadcast (all 1s)
  bool partial_broadcast = false;                 // any other broadcast
};

std::optional<MatMulCase> matmul_case(const Tensor& ta, const Tensor& tb) {
  if (ta.numel() == 0 || tb.numel() == 0 || ta.rank() == 0 || tb.rank() == 0) return std::nullopt;
  Dims a = to_dims(ta.shape()), b = to_dims(tb.shape());
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  size_t rank = std::max(a.size(), b.size());
  if (rank > DNNL_MAX_NDIMS) return std::nullopt;
  a.insert(a.begin(), rank - a.size(), 1);
  b.insert(b.begin(), rank - b.size(), 1);
  MatMulCase k;
  Dims y(rank);
  bool a_all_ones = true, b_all_ones = true;
  for (size_t i = 0; i + 2 < rank; ++i) {
    y[i] = std::max(a[i], b[i]);
    a_all_ones = a_all_ones && a[i] == 1;
    b_all_ones = b_all_ones && b[i] == 1;
    if (a[i] != b[i]) {
      k.a_broadcast = k.a_broadcast || a[i] == 1;
      k.b_broadcast = k.b_broadcast || b[i] == 1;
    }
  }
  y[rank - 2] = a[rank - 2];
  y[rank - 1] = b[rank - 1];
  if (shape_numel(Shape(y.begin(), y.end())) == 0) return std::nullopt;
  k.partial_broadcast = (k.a_broadcast && !a_all_ones) || (k.b_broadcast && !b_all_ones);
  k.a = plain(a);
  k.b = plain(b);
  k.y = plain(y);
  return k;
}

// A batch of matrices with its batch axes folded into the rows:
// (batch..., m, k) -> (batch * m, k). Only for plain storage.
Mat rows_folded(const Mat& m) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < m.dims.size(); ++i) rows *= m.dims[i];
  return plain({rows, m.dims.back()});
}

}  // namespace

bool matmul_forward(const ops::KernelContext& c) {
  if (!enabled() || !all_f32({&c.in(0), &c.in(1)})) return false;
  std::optional<MatMulCase> k = matmul_case(c.in(0), c.in(1));
  if (!k) return false;
  auto e = matmul_entry(MatmulCase{k->a, k->b, k->y});
  if (!e) return false;
  run(*e, c.in(0).raw(), c.in(1).raw(), c.out(0).raw());
  count_served();
  return true;
}

// Without broadcasting: dA = dY B^T and dB = A^T dY per matrix of the
// batch. When B is one matrix shared by the whole batch (a linear layer),
// dB = sum over the batch of A^T dY, one product of the batch-folded A and
// dY. Other broadcasts decline.
bool matmul_backward(const ops::BackwardContext& c) {
  if (!enabled() || !c.has_grad_output(0)) return false;
  if (!c.wants_grad(0) && !c.wants_grad(1)) return false;
  const Tensor& a = c.in(0);
  const Tensor& b = c.in(1);
  const Tensor& dy = c.grad_out(0);
  if (!all_f32({&a, &b, &dy})) return false;
  std::optional<MatMulCase> k = matmul_case(a, b);
  if (!k || k->partial_broadcast || k->a_broadcast) return false;
  std::shared_ptr<MatmulEntry> da, db;
  if (c.wants_grad(0)) {
    if (!(da = matmul_entry(MatmulCase{k->y, transposed(k->b), k->a}))) return false;
  }
  if (c.wants_grad(1)) {
    MatmulCase product =
        k->b_broadcast ? MatmulCase{transposed(rows_folded(k->a)), rows_folded(k->y),
                                    plain({k->b.dims[k->b.dims.size() - 2], k->b.dims.back()})}
                       : MatmulCase{transposed(k->a), k->y, k->b};
    if (!(db = matmul_entry(product))) return false;
  }
  if (da) run(*da, dy.raw(), b.raw(), c.grad_in(0).raw());
  if (db) run(*db, a.raw(), dy.raw(), c.grad_in(1).raw());
  count_served();
  return true;
}

}  // namespace graft::backend
