// MaxPool, AveragePool and GlobalAveragePool on oneDNN, forward and
// backward, on graft's plain NCHW layout.
//
// ONNX and oneDNN agree on a window's taps; where they can disagree, the
// case declines to the reference kernel:
// - a window with no tap inside the input (ONNX defines its value; oneDNN
//   would divide by zero or return its own lowest value);
// - AveragePool counting the padding when ceil_mode extends the last
//   window past the end padding (ONNX counts only taps inside the padded
//   input; oneDNN divides by the whole window);
// - MaxPool's Indices output (oneDNN's workspace is not ONNX's indices).
#include <optional>
#include <vector>

#include "backend/backend.h"
#include "backend/dnnl_util.h"
#include "backend/loops.h"
#include "ops/conv_geometry.h"

namespace graft::backend {

namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct PoolCase {
  algorithm alg;
  Dims x, y, kernel, strides, dilates, pad_l, pad_r;

  // Every output reads its window.
  int64_t cost() const {
    return elements_cost(shape_numel(Shape(y.begin(), y.end())) *
                         shape_numel(Shape(kernel.begin(), kernel.end())));
  }
  std::string key(const char* what) const {
    return fmt::format("{} {} x{} y{} k{} s{} d{} l{} r{}", what, static_cast<int>(alg),
                       key_dims(x), key_dims(y), key_dims(kernel), key_dims(strides),
                       key_dims(dilates), key_dims(pad_l), key_dims(pad_r));
  }
};

// True when every output position along axis i has a tap inside the input.
bool every_window_sees_input(const ops::ConvGeometry& g, int i) {
  for (int64_t o = 0; o < g.out[i]; ++o) {
    bool seen = false;
    for (int64_t k = 0; k < g.kernel[i] && !seen; ++k) {
      int64_t pos = o * g.strides[i] + k * g.dilations[i] - g.pad_begin[i];
      seen = pos >= 0 && pos < g.in[i];
    }
    if (!seen) return false;
  }
  return true;
}

std::optional<PoolCase> windowed_case(const Node& node, const Shape& x) {
  bool max = node.op_type == "MaxPool";
  bool include_pad = !max && node.attr_int("count_include_pad", 0) != 0;
  ops::ConvGeometry g =
      ops::window_geometry(node, ops::spatial_dims(x), node.attr_ints("kernel_shape"),
                           node.attr_int("ceil_mode", 0) != 0);
  PoolCase k;
  k.alg = max           ? algorithm::pooling_max
          : include_pad ? algorithm::pooling_avg_include_padding
                        : algorithm::pooling_avg_exclude_padding;
  k.y = {x[0], x[1]};
  for (int i = 0; i < g.rank(); ++i) {
    if (!every_window_sees_input(g, i)) return std::nullopt;
    // oneDNN wants in + pads - extent = (out - 1) * stride + remainder; with
    // ceil_mode the end padding the last window reaches can exceed `pads`.
    int64_t pad_r = g.pad_end[i];
    if ((g.in[i] + g.pad_begin[i] + pad_r - g.extent(i)) / g.strides[i] + 1 != g.out[i])
      pad_r = (g.out[i] - 1) * g.strides[i] + g.extent(i) - g.in[i] - g.pad_begin[i];
    if (include_pad && pad_r > g.pad_end[i]) return std::nullopt;
    k.y.push_back(g.out[i]);
    k.kernel.push_back(g.kernel[i]);
    k.strides.push_back(g.strides[i]);
    k.dilates.push_back(g.dilations[i] - 1);  // oneDNN counts the gaps
    k.pad_l.push_back(g.pad_begin[i]);
    k.pad_r.push_back(pad_r);
  }
  return k;
}

std::optional<PoolCase> pool_case(const Node& node, const Tensor& x) {
  if (x.rank() < 3 || x.rank() > 5 || x.numel() == 0) return std::nullopt;
  const std::string& op = node.op_type;
  std::optional<PoolCase> k;
  if (op == "GlobalAveragePool") {
    k = PoolCase();
    k->alg = algorithm::pooling_avg_exclude_padding;
    k->y = {x.dim(0), x.dim(1)};
    for (int64_t n : ops::spatial_dims(x.shape())) {
      k->y.push_back(1);
      k->kernel.push_back(n);
      k->strides.push_back(1);
      k->dilates.push_back(0);
      k->pad_l.push_back(0);
      k->pad_r.push_back(0);
    }
  } else if (op == "MaxPool" || op == "AveragePool") {
    k = windowed_case(node, x.shape());
  }
  if (!k || shape_numel(k->y) == 0) return std::nullopt;
  k->x = to_dims(x.shape());
  return k;
}

dnnl::pooling_v2_forward::desc forward_desc(const PoolCase& k, prop_kind prop) {
  return dnnl::pooling_v2_forward::desc(prop, k.alg, plain_md(k.x), plain_md(k.y), k.strides,
                                        k.kernel, k.dilates, k.pad_l, k.pad_r);
}

// MaxPool's backward needs the forward's workspace (where each maximum
// was), so the backward entry keeps a training-mode forward to rerun.
struct PoolBackward {
  dnnl::pooling_v2_forward forward;
  dnnl::pooling_v2_backward backward;
  std::optional<memory::desc> workspace;
};

std::shared_ptr<PoolBackward> build_backward(const PoolCase& k) {
  dnnl::pooling_v2_forward::primitive_desc hint(forward_desc(k, prop_kind::forward_training),
                                                engine());
  dnnl::pooling_v2_backward::primitive_desc pd(
      dnnl::pooling_v2_backward::desc(k.alg, plain_md(k.x), plain_md(k.y), k.strides, k.kernel,
                                      k.dilates, k.pad_l, k.pad_r),
      attributes(), engine(), hint);
  auto e = std::make_shared<PoolBackward>();
  e->forward = dnnl::pooling_v2_forward(hint);
  e->backward = dnnl::pooling_v2_backward(pd);
  if (k.alg == algorithm::pooling_max) e->workspace = hint.workspace_desc();
  return e;
}

}  // namespace

bool pool_forward(const ops::KernelContext& c) {
  const Tensor& x = c.in(0);
  bool wants_indices = c.outputs.size() > 1 && c.outputs[1];
  if (!enabled() || !all_f32({&x}) || wants_indices) return false;
  std::optional<PoolCase> k = pool_case(c.node, x);
  if (!k) return false;
  auto prim = cached<dnnl::pooling_v2_forward>(k->key("pool"), k->cost(), [&] {
    return std::make_shared<dnnl::pooling_v2_forward>(dnnl::pooling_v2_forward::primitive_desc(
        forward_desc(*k, prop_kind::forward_inference), attributes(), engine()));
  });
  if (!prim) return false;
  execute(*prim,
          {{DNNL_ARG_SRC, wrap(plain_md(k->x), x)}, {DNNL_ARG_DST, wrap(plain_md(k->y), c.out(0))}},
          k->cost());
  count_served();
  return true;
}

bool pool_backward(const ops::BackwardContext& c) {
  if (!enabled() || !c.has_grad_output(0) || !c.wants_grad(0)) return false;
  const Tensor& x = c.in(0);
  if (!all_f32({&x, &c.grad_out(0)})) return false;
  std::optional<PoolCase> k = pool_case(c.node, x);
  if (!k) return false;
  auto e =
      cached<PoolBackward>(k->key("pool_backward"), k->cost(), [&] { return build_backward(*k); });
  if (!e) return false;
  memory::desc x_md = plain_md(k->x), y_md = plain_md(k->y);
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, wrap(y_md, c.grad_out(0))},
                                       {DNNL_ARG_DIFF_SRC, wrap(x_md, c.grad_in(0))}};
  if (e->workspace) {
    memory workspace = scratch(*e->workspace, kWorkspaceSlot);
    execute(e->forward,
            {{DNNL_ARG_SRC, wrap(x_md, x)},
             {DNNL_ARG_DST, scratch(y_md, kDstSlot)},
             {DNNL_ARG_WORKSPACE, workspace}},
            k->cost());
    args[DNNL_ARG_WORKSPACE] = workspace;
  }
  execute(e->backward, args, k->cost());
  count_served();
  return true;
}

namespace {

// sum[k] += the channel k value of each of `pixels` pixels of c channels.
GRAFT_PLANE_LOOP void sum_pixels(const float* x, int64_t pixels, int64_t c, double* sum) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t k = 0; k < c; ++k) sum[k] += x[p * c + k];
}

}  // namespace

void global_average_pool_channels_last(const Tensor& x, Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  // Summed in double, as the reference kernel does, a pixel's channels at a time.
#pragma omp parallel for num_threads(loop_threads(x.numel())) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    thread_local std::vector<double> sum;
    sum.assign(c, 0.0);
    sum_pixels(px + i * hw * c, hw, c, sum.data());
    for (int64_t k = 0; k < c; ++k)
      py[i * c + k] = static_cast<float>(hw == 0 ? 0.0 : sum[k] / static_cast<double>(hw));
  }
}

}  // namespace graft::backend
