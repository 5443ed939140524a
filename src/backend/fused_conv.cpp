// Fused convolutions (backend.h): one convolution primitive with its
// activations and residual sum as post-ops, weights reordered once.
//
// Layouts: an input or output stored channels-last is given to oneDNN as
// exactly that (nhwc), which its fast kernels take directly (brgconv for
// 1x1 and 3x3, jit_dw for depthwise); one stored NCHW is left for oneDNN to
// choose and reordered through scratch, as conv.cpp does.
#include <cstring>

#include "backend/backend.h"
#include "backend/conv_case.h"
#include "backend/dnnl_util.h"

namespace graft::backend {

namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct FusedPrimitive {
  int64_t cost = 0;
  dnnl::convolution_forward prim;
  memory::desc x_md, y_md, b_md, w_md;  // x and y as stored; w as the primitive wants it
  memory::desc dw_w_md;                 // the depthwise post-op's weights, as wanted
  Reorder x_in, y_out, addend_in;       // to and from the primitive's layouts
};

memory::desc stored_md(const Dims& dims, bool channels_last) {
  return channels_last ? memory::desc(dims, memory::data_type::f32, memory::format_tag::nhwc)
                       : plain_md(dims);
}

std::optional<Eltwise> eltwise_of(const ConvPostOp& op) {
  if (op.activation->op_type == "Clip") return Eltwise{algorithm::eltwise_clip, op.clip_lo, op.clip_hi};
  return activation_of(*op.activation);
}

// A copy of weights `w` (plain layout `plain`) in layout `md`.
memory laid_out(const Tensor& w, const memory::desc& plain, const memory::desc& md) {
  memory out(md, engine());
  Reorder to(plain, md);
  if (to.needed()) to.into(wrap(plain, w), out);
  else std::memcpy(out.get_data_handle(), w.raw(), w.nbytes());
  return out;
}

}  // namespace

class FusedConv {
 public:
  FusedConvSpec spec;
  ConvCase k;
  Dims y;  // the output: the convolution's, or the depthwise post-op's
  std::string key;
  dnnl::post_ops post;
  // Kept from one run to the next for primitive `bound`: its weights in its
  // layout, and memory objects and arguments that a run only points at its
  // tensors (making them anew cost about 1% of MobileNetV2 at batch 1).
  std::shared_ptr<FusedPrimitive> bound;
  int bound_threads = 0;
  memory weights, dw_weights, x_stored, y_stored;
  std::unordered_map<int, memory> args;

  // The primitive for this thread's current thread count.
  std::shared_ptr<FusedPrimitive> current() {
    const int threads = choose_threads(macs_cost(k.macs()));
    if (bound && threads == bound_threads) return bound;
    std::shared_ptr<FusedPrimitive> e = primitive();
    GRAFT_ASSERT(e != nullptr);
    bind(e, threads);
    return e;
  }

  void bind(const std::shared_ptr<FusedPrimitive>& e, int threads) {
    weights = laid_out(spec.weights, plain_md(k.w), e->w_md);
    args = {{DNNL_ARG_WEIGHTS, weights}};
    if (k.bias) args[DNNL_ARG_BIAS] = wrap(e->b_md, spec.bias);
    if (spec.dw_weights.defined()) {
      const Shape& s = spec.dw_weights.shape();  // (C, 1, 3, 3) as grouped weights
      dw_weights = laid_out(spec.dw_weights, plain_md({s[0], 1, 1, s[2], s[3]}), e->dw_w_md);
      args[DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS] = dw_weights;
      args[DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS] =
          wrap(plain_md({spec.dw_bias.numel()}), spec.dw_bias);
    }
    x_stored = memory(e->x_md, engine(), DNNL_MEMORY_NONE);
    y_stored = memory(e->y_md, engine(), DNNL_MEMORY_NONE);
    bound = e;
    bound_threads = threads;
  }

  std::shared_ptr<FusedPrimitive> primitive() {
    return cached<FusedPrimitive>(key, macs_cost(k.macs()), [&]() -> std::shared_ptr<FusedPrimitive> {
      auto e = std::make_shared<FusedPrimitive>();
      e->x_md = stored_md(k.x, spec.x_channels_last);
      e->y_md = stored_md(y, spec.y_channels_last);
      e->b_md = plain_md(k.b);
      dnnl::convolution_forward::desc d(
          prop_kind::forward_inference, algorithm::convolution_direct,
          spec.x_channels_last ? e->x_md : any_md(k.x), any_md(k.w),
          k.bias ? e->b_md : memory::desc(),
          // The convolution's own output dims, also when a depthwise post-op follows.
          spec.y_channels_last ? stored_md(k.y, true) : any_md(k.y),
          k.strides, k.dilates, k.pad_l, k.pad_r);
      dnnl::primitive_attr attr = attributes();
      attr.set_post_ops(post);
      dnnl::convolution_forward::primitive_desc pd(d, attr, engine());
      if (std::string(pd.impl_info_str()).find("ref") != std::string::npos) return nullptr;
      e->cost = macs_cost(k.macs());
      e->prim = dnnl::convolution_forward(pd);
      e->w_md = pd.weights_desc();
      if (spec.dw_weights.defined())
        e->dw_w_md = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS);
      e->x_in = Reorder(e->x_md, pd.src_desc());
      e->y_out = Reorder(pd.dst_desc(), e->y_md);
      e->addend_in = Reorder(e->y_md, pd.dst_desc());
      return e;
    });
  }
};

std::shared_ptr<FusedConv> make_fused_conv(const FusedConvSpec& spec) {
  if (!enabled() || !all_f32({&spec.weights, spec.bias.defined() ? &spec.bias : nullptr}))
    return nullptr;
  if ((spec.x_channels_last || spec.y_channels_last) && spec.x.size() != 4) return nullptr;
  std::optional<ConvCase> k = conv_case(spec.conv, spec.x, spec.weights.shape(), spec.bias.defined());
  if (!k) return nullptr;
  auto f = std::make_shared<FusedConv>();
  f->spec = spec;
  f->k = *k;
  f->y = k->y;
  std::string post_key;
  for (const ConvPostOp& op : spec.post) {
    if (op.depthwise) {
      const int64_t s = spec.dw_stride;
      f->post.append_dw(memory::data_type::f32, memory::data_type::f32, memory::data_type::f32, 3,
                        s, 1, 0, {});
      for (size_t d = 2; d < f->y.size(); ++d) f->y[d] = (f->y[d] + 2 - 3) / s + 1;
      post_key += fmt::format(" dw{}", s);
      continue;
    }
    if (!op.activation) {
      f->post.append_sum(1.0f);
      post_key += " sum";
      continue;
    }
    std::optional<Eltwise> e = eltwise_of(op);
    if (!e) return nullptr;
    f->post.append_eltwise(1.0f, e->alg, e->alpha, e->beta);
    post_key += e->key(" eltwise", 0);
  }
  f->key = k->key("fused_conv") + post_key + fmt::format(" cl{}{}", spec.x_channels_last,
                                                         spec.y_channels_last);
  if (!f->primitive()) return nullptr;
  return f;
}

void run_fused_conv(FusedConv& f, const Tensor& x_user, const Tensor* addend, Tensor& y_user) {
  std::shared_ptr<FusedPrimitive> e = f.current();
  f.x_stored.set_data_handle(const_cast<void*>(x_user.raw()));
  f.y_stored.set_data_handle(y_user.raw());
  memory x = e->x_in.to(f.x_stored, kSrcSlot);
  memory y = output_memory(e->y_out, f.y_stored, kDstSlot);
  if (addend) {
    if (e->addend_in.needed())
      e->addend_in.into(wrap(e->y_md, *addend), y);
    else if (addend->raw() != y_user.raw())
      std::memcpy(y_user.raw(), addend->raw(), y_user.nbytes());
  }
  f.args[DNNL_ARG_SRC] = x;
  f.args[DNNL_ARG_DST] = y;
  execute(e->prim, f.args, e->cost);
  e->y_out.into(y, f.y_stored);
  count_served();
}

}  // namespace graft::backend
