// Conv on oneDNN: forward, backward data, and backward weights with the
// bias gradient; 1-D to 3-D, grouped and depthwise.
//
// Layouts: the primitives choose their own (format_tag::any). For
// MobileNetV2's shapes oneDNN's fast convolutions (brgconv, brdgmm_dw) want
// channel-blocked or channels-last activations and blocked weights; with
// graft's plain NCHW on both sides it falls back to im2col + GEMM, 5x
// slower on those shapes even counting the reorders at each end that
// choosing freely costs. The reordered copies live in per-thread scratch.
#include <algorithm>
#include <optional>

#include "backend/backend.h"
#include "backend/dnnl_util.h"
#include "ops/conv_geometry.h"

namespace graft::backend {

namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

// A Conv node's case in oneDNN's terms.
struct ConvCase {
  Dims x, w, b, y;  // w is (group, C_out / group, C_in / group, k...) when grouped
  Dims strides, dilates, pad_l, pad_r;
  bool bias = false;

  // Multiply-adds of one pass (forward, backward data or backward weights).
  int64_t macs() const {
    return shape_numel(Shape(y.begin(), y.end())) / y[1] * shape_numel(Shape(w.begin(), w.end()));
  }

  // 1x1 kernel, unit strides, no padding, one group.
  bool pointwise() const {
    bool unit = w.size() == x.size();  // not grouped
    for (size_t i = 2; i < w.size(); ++i) unit = unit && w[i] == 1;
    for (size_t i = 0; i < strides.size(); ++i)
      unit = unit && strides[i] == 1 && pad_l[i] == 0 && pad_r[i] == 0;
    return unit;
  }

  std::string key(const char* what) const {
    return fmt::format("{} x{} w{} y{} b{} s{} d{} l{} r{}", what, key_dims(x), key_dims(w),
                       key_dims(y), bias, key_dims(strides), key_dims(dilates), key_dims(pad_l),
                       key_dims(pad_r));
  }
};

std::optional<ConvCase> conv_case(const Node& node, const Tensor& x, const Tensor& w, bool bias) {
  if (x.rank() < 3 || x.rank() > 5 || x.numel() == 0 || w.numel() == 0) return std::nullopt;
  ops::ConvGeometry g =
      ops::window_geometry(node, ops::spatial_dims(x.shape()), ops::spatial_dims(w.shape()), false);
  int64_t groups = node.attr_int("group", 1);
  ConvCase k;
  k.x = to_dims(x.shape());
  k.w = to_dims(w.shape());
  if (groups > 1) {
    k.w[0] /= groups;
    k.w.insert(k.w.begin(), groups);
  }
  k.y = {x.dim(0), w.dim(0)};
  k.y.insert(k.y.end(), g.out.begin(), g.out.end());
  if (shape_numel(k.y) == 0) return std::nullopt;
  k.b = {w.dim(0)};
  k.strides = to_dims(g.strides);
  for (int64_t d : g.dilations) k.dilates.push_back(d - 1);  // oneDNN counts the gaps
  k.pad_l = to_dims(g.pad_begin);
  k.pad_r = to_dims(g.pad_end);
  k.bias = bias;
  return k;
}

dnnl::convolution_forward::desc forward_desc(const ConvCase& k, prop_kind prop) {
  memory::desc bias = k.bias ? plain_md(k.b) : memory::desc();
  return dnnl::convolution_forward::desc(prop, algorithm::convolution_direct, any_md(k.x),
                                         any_md(k.w), bias, any_md(k.y), k.strides, k.dilates,
                                         k.pad_l, k.pad_r);
}

struct ConvForward {
  int64_t cost = 0;
  dnnl::convolution_forward prim;
  memory::desc x_md, w_md, b_md, y_md;  // graft's plain layouts
  Reorder x_in, w_in, y_out;
};

std::shared_ptr<ConvForward> build_forward(const ConvCase& k) {
  dnnl::convolution_forward::primitive_desc pd(forward_desc(k, prop_kind::forward_inference),
                                               engine());
  auto e = std::make_shared<ConvForward>();
  e->cost = macs_cost(k.macs());
  e->prim = dnnl::convolution_forward(pd);
  e->x_md = plain_md(k.x);
  e->w_md = plain_md(k.w);
  e->b_md = plain_md(k.b);
  e->y_md = plain_md(k.y);
  e->x_in = Reorder(e->x_md, pd.src_desc());
  e->w_in = Reorder(e->w_md, pd.weights_desc());
  e->y_out = Reorder(pd.dst_desc(), e->y_md);
  return e;
}

// A pointwise convolution is, image by image, the matrix product
// Y[n] (C_out x HW) = W (C_out x C_in) . X[n] (C_in x HW) on graft's own
// layout, which oneDNN's matmul computes for the whole batch in one
// primitive (W broadcast) without any reorder: 2-3x faster than the
// convolution primitive with its reorders on MobileNetV2's pointwise layers
// at 28x28 and larger, within 20% at 7x7. The bias is written into Y first
// and the product added to it (a sum post-op): the matmul's own bias would
// be per row here, which its fast kernel lacks.
struct Pointwise {
  int64_t cost = 0;
  dnnl::matmul prim;
  memory::desc w_md, x_md, y_md;  // (1, C_out, C_in), (N, C_in, HW), (N, C_out, HW)
};

std::shared_ptr<Pointwise> build_pointwise(const ConvCase& k) {
  int64_t batch = k.x[0], out_c = k.y[1], in_c = k.x[1];
  int64_t plane = shape_numel(Shape(k.x.begin() + 2, k.x.end()));
  auto e = std::make_shared<Pointwise>();
  e->w_md = plain_md({1, out_c, in_c});  // shared by the batch
  e->x_md = plain_md({batch, in_c, plane});
  e->y_md = plain_md({batch, out_c, plane});
  e->cost = macs_cost(batch * out_c * in_c * plane);
  dnnl::primitive_attr attr;
  if (k.bias) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  e->prim = dnnl::matmul(
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(e->w_md, e->x_md, e->y_md), attr, engine()));
  return e;
}

void run_pointwise(const Pointwise& e, const ops::KernelContext& c, const ConvCase& k) {
  int64_t out_c = k.y[1];
  int64_t plane = shape_numel(Shape(k.x.begin() + 2, k.x.end()));
  float* y = c.out(0).data<float>();
  if (k.bias) {
    const float* b = c.in(2).data<float>();
    for (int64_t n = 0; n < k.x[0]; ++n)
      for (int64_t o = 0; o < out_c; ++o) std::fill_n(y + (n * out_c + o) * plane, plane, b[o]);
  }
  execute(e.prim,
          {{DNNL_ARG_SRC, wrap(e.w_md, c.in(1))},
           {DNNL_ARG_WEIGHTS, wrap(e.x_md, c.in(0))},
           {DNNL_ARG_DST, wrap(e.y_md, y)}},
          e.cost);
}

// Backward descriptors take a forward one as the hint, as oneDNN asks.
struct ConvBackward {
  int64_t cost = 0;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights weights;
  memory::desc x_md, w_md, b_md, y_md;
  Reorder dy_to_data, w_to_data, dx_out;        // for dX
  Reorder x_to_weights, dy_to_weights, dw_out;  // for dW and dB
};

std::shared_ptr<ConvBackward> build_backward(const ConvCase& k) {
  dnnl::convolution_forward::primitive_desc hint(forward_desc(k, prop_kind::forward_training),
                                                 engine());
  dnnl::convolution_backward_data::primitive_desc data_pd(
      dnnl::convolution_backward_data::desc(algorithm::convolution_direct, any_md(k.x), any_md(k.w),
                                            any_md(k.y), k.strides, k.dilates, k.pad_l, k.pad_r),
      engine(), hint);
  dnnl::convolution_backward_weights::primitive_desc weights_pd(
      dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, any_md(k.x),
                                               any_md(k.w), plain_md(k.b), any_md(k.y), k.strides,
                                               k.dilates, k.pad_l, k.pad_r),
      engine(), hint);
  auto e = std::make_shared<ConvBackward>();
  e->cost = macs_cost(k.macs());
  e->data = dnnl::convolution_backward_data(data_pd);
  e->weights = dnnl::convolution_backward_weights(weights_pd);
  e->x_md = plain_md(k.x);
  e->w_md = plain_md(k.w);
  e->b_md = plain_md(k.b);
  e->y_md = plain_md(k.y);
  e->dy_to_data = Reorder(e->y_md, data_pd.diff_dst_desc());
  e->w_to_data = Reorder(e->w_md, data_pd.weights_desc());
  e->dx_out = Reorder(data_pd.diff_src_desc(), e->x_md);
  e->x_to_weights = Reorder(e->x_md, weights_pd.src_desc());
  e->dy_to_weights = Reorder(e->y_md, weights_pd.diff_dst_desc());
  e->dw_out = Reorder(weights_pd.diff_weights_desc(), e->w_md);
  return e;
}

void backward_data(const ConvBackward& e, const ops::BackwardContext& c, const memory& dy_user) {
  memory dy = e.dy_to_data.to(dy_user, kDiffDstSlot);
  memory w = e.w_to_data.to(wrap(e.w_md, c.in(1)), kWeightsSlot);
  memory dx_user = wrap(e.x_md, c.grad_in(0));
  memory dx = output_memory(e.dx_out, dx_user, kDiffSrcSlot);
  execute(e.data, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}},
          e.cost);
  e.dx_out.into(dx, dx_user);
}

// dW and dB come from one primitive; an unwanted one goes to scratch.
void backward_weights(const ConvBackward& e, const ops::BackwardContext& c, const memory& dy_user) {
  memory x = e.x_to_weights.to(wrap(e.x_md, c.in(0)), kSrcSlot);
  memory dy = e.dy_to_weights.to(dy_user, kDiffDst2Slot);
  memory dw_user = c.wants_grad(1) ? wrap(e.w_md, c.grad_in(1)) : scratch(e.w_md, kExtraSlot);
  memory dw = output_memory(e.dw_out, dw_user, kDiffWeightsSlot);
  memory db = c.wants_grad(2) ? wrap(e.b_md, c.grad_in(2)) : scratch(e.b_md, kDiffBiasSlot);
  execute(e.weights,
          {{DNNL_ARG_SRC, x},
           {DNNL_ARG_DIFF_DST, dy},
           {DNNL_ARG_DIFF_WEIGHTS, dw},
           {DNNL_ARG_DIFF_BIAS, db}},
          e.cost);
  if (c.wants_grad(1)) e.dw_out.into(dw, dw_user);
}

}  // namespace

bool conv_forward(const ops::KernelContext& c) {
  const Tensor* bias = c.has_input(2) ? &c.in(2) : nullptr;
  if (!enabled() || !all_f32({&c.in(0), &c.in(1), bias})) return false;
  std::optional<ConvCase> k = conv_case(c.node, c.in(0), c.in(1), bias != nullptr);
  if (!k) return false;
  if (k->pointwise()) {
    auto p = cached<Pointwise>(k->key("pointwise"), [&] { return build_pointwise(*k); });
    if (p) {
      run_pointwise(*p, c, *k);
      count_served();
      return true;
    }
  }
  auto e = cached<ConvForward>(k->key("conv"), [&] { return build_forward(*k); });
  if (!e) return false;
  memory x = e->x_in.to(wrap(e->x_md, c.in(0)), kSrcSlot);
  memory w = e->w_in.to(wrap(e->w_md, c.in(1)), kWeightsSlot);
  memory y_user = wrap(e->y_md, c.out(0));
  memory y = output_memory(e->y_out, y_user, kDstSlot);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}};
  if (bias) args[DNNL_ARG_BIAS] = wrap(e->b_md, *bias);
  execute(e->prim, args, e->cost);
  e->y_out.into(y, y_user);
  count_served();
  return true;
}

bool conv_backward(const ops::BackwardContext& c) {
  if (!enabled() || !c.has_grad_output(0)) return false;
  if (!c.wants_grad(0) && !c.wants_grad(1) && !c.wants_grad(2)) return false;
  if (!all_f32({&c.in(0), &c.in(1), &c.grad_out(0)})) return false;
  std::optional<ConvCase> k = conv_case(c.node, c.in(0), c.in(1), true);
  if (!k) return false;
  auto e = cached<ConvBackward>(k->key("conv_backward"), [&] { return build_backward(*k); });
  if (!e) return false;
  memory dy_user = wrap(e->y_md, c.grad_out(0));
  if (c.wants_grad(0)) backward_data(*e, c, dy_user);
  if (c.wants_grad(1) || c.wants_grad(2)) backward_weights(*e, c, dy_user);
  count_served();
  return true;
}

}  // namespace graft::backend
