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

}  // namespace

class FusedConv {
 public:
  FusedConvSpec spec;
  ConvCase k;
  std::string key;
  dnnl::post_ops post;
  const FusedPrimitive* weights_for = nullptr;  // the primitive `weights` is laid out for
  memory weights;

  std::shared_ptr<FusedPrimitive> primitive() {
    return cached<FusedPrimitive>(key, macs_cost(k.macs()), [&]() -> std::shared_ptr<FusedPrimitive> {
      auto e = std::make_shared<FusedPrimitive>();
      e->x_md = stored_md(k.x, spec.x_channels_last);
      e->y_md = stored_md(k.y, spec.y_channels_last);
      e->b_md = plain_md(k.b);
      dnnl::convolution_forward::desc d(
          prop_kind::forward_inference, algorithm::convolution_direct,
          spec.x_channels_last ? e->x_md : any_md(k.x), any_md(k.w),
          k.bias ? e->b_md : memory::desc(), spec.y_channels_last ? e->y_md : any_md(k.y),
          k.strides, k.dilates, k.pad_l, k.pad_r);
      dnnl::primitive_attr attr = attributes();
      attr.set_post_ops(post);
      dnnl::convolution_forward::primitive_desc pd(d, attr, engine());
      if (std::string(pd.impl_info_str()).find("ref") != std::string::npos) return nullptr;
      e->cost = macs_cost(k.macs());
      e->prim = dnnl::convolution_forward(pd);
      e->w_md = pd.weights_desc();
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
  std::string post_key;
  for (const ConvPostOp& op : spec.post) {
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
  std::shared_ptr<FusedPrimitive> e = f.primitive();
  GRAFT_ASSERT(e != nullptr);
  if (f.weights_for != e.get()) {  // first run, or another thread count chose another layout
    f.weights = memory(e->w_md, engine());
    Reorder to_primitive(plain_md(f.k.w), e->w_md);
    if (to_primitive.needed())
      to_primitive.into(wrap(plain_md(f.k.w), f.spec.weights), f.weights);
    else
      std::memcpy(f.weights.get_data_handle(), f.spec.weights.raw(), f.spec.weights.nbytes());
    f.weights_for = e.get();
  }
  memory x = e->x_in.to(wrap(e->x_md, x_user), kSrcSlot);
  memory y_stored = wrap(e->y_md, y_user);
  memory y = output_memory(e->y_out, y_stored, kDstSlot);
  if (addend) {
    if (e->addend_in.needed())
      e->addend_in.into(wrap(e->y_md, *addend), y);
    else if (addend->raw() != y_user.raw())
      std::memcpy(y_user.raw(), addend->raw(), y_user.nbytes());
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, f.weights}, {DNNL_ARG_DST, y}};
  if (f.k.bias) args[DNNL_ARG_BIAS] = wrap(e->b_md, f.spec.bias);
  execute(e->prim, args, e->cost);
  e->y_out.into(y, y_stored);
  count_served();
}

}  // namespace graft::backend
