// Conv on oneDNN: forward, backward data, and backward weights with the
// bias gradient; 1-D to 3-D, grouped.
//
// Layouts: the primitives choose their own (format_tag::any). For
// MobileNetV2's shapes oneDNN's fast convolutions (brgconv, brdgmm_dw) want
// channel-blocked or channels-last activations and blocked weights; with
// graft's plain NCHW on both sides it falls back to im2col + GEMM, 5x
// slower on those shapes even counting the reorders at each end that
// choosing freely costs. The reordered copies live in per-thread scratch.
// Pointwise, depthwise and few-input-channel convolutions take other roads
// (pointwise.cpp, depthwise.cpp, unfolded_conv.cpp).
#include <algorithm>
#include <optional>

#include "backend/backend.h"
#include "backend/conv_case.h"
#include "backend/dnnl_util.h"

namespace graft::backend {

namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

dnnl::convolution_forward::desc forward_desc(const ConvCase& k, prop_kind prop) {
  memory::desc bias = k.bias ? plain_md(k.b) : memory::desc();
  return dnnl::convolution_forward::desc(prop, algorithm::convolution_direct, any_md(k.x),
                                         any_md(k.w), bias, any_md(k.y), k.strides,
                                         k.dilates, k.pad_l, k.pad_r);
}

struct ConvForward {
  int64_t cost = 0;
  dnnl::convolution_forward prim;
  memory::desc x_md, w_md, b_md, y_md;  // graft's plain layouts
  Reorder x_in, w_in, y_out;
};

std::shared_ptr<ConvForward> build_forward(const ConvCase& k) {
  dnnl::convolution_forward::primitive_desc pd(forward_desc(k, prop_kind::forward_inference),
                                               attributes(), engine());
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
      dnnl::convolution_backward_data::desc(algorithm::convolution_direct, any_md(k.x),
                                            any_md(k.w), any_md(k.y), k.strides,
                                            k.dilates, k.pad_l, k.pad_r),
      attributes(), engine(), hint);
  dnnl::convolution_backward_weights::primitive_desc weights_pd(
      dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, any_md(k.x),
                                               any_md(k.w), plain_md(k.b), any_md(k.y),
                                               k.strides, k.dilates, k.pad_l, k.pad_r),
      attributes(), engine(), hint);
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
  std::optional<ConvCase> k = conv_case(c.node, c.in(0).shape(), c.in(1).shape(), bias != nullptr);
  if (!k) return false;
  if (k->pointwise() && pointwise_forward(c, *k)) return true;
  if (k->unfolds() && unfolded_forward(c, *k)) return true;
  if (k->depthwise()) return depthwise_forward(c, *k);
  auto e =
      cached<ConvForward>(k->key("conv"), macs_cost(k->macs()), [&] { return build_forward(*k); });
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
  std::optional<ConvCase> k = conv_case(c.node, c.in(0).shape(), c.in(1).shape(), true);
  if (!k) return false;
  if (k->pointwise() && pointwise_backward(c, *k)) return true;
  if (k->unfolds() && unfolded_backward(c, *k)) return true;
  if (k->depthwise()) return depthwise_backward(c, *k);
  auto e = cached<ConvBackward>(k->key("conv_backward"), macs_cost(k->macs()),
                                [&] { return build_backward(*k); });
  if (!e) return false;
  memory dy_user = wrap(e->y_md, c.grad_out(0));
  if (c.wants_grad(0)) backward_data(*e, c, dy_user);
  if (c.wants_grad(1) || c.wants_grad(2)) backward_weights(*e, c, dy_user);
  count_served();
  return true;
}

}  // namespace graft::backend
