// BatchNormalization on oneDNN, per-channel statistics, plain layout: the
// inference form (running statistics given), the training form (batch
// statistics, running statistics updated), and both backward passes.
//
// The semantics are the op's (src/ops/normalization.cpp): the running
// update is running * momentum + batch * (1 - momentum), with the unbiased
// batch variance when graft's executor trains the node (as PyTorch) and the
// biased one for a node's own training_mode=1 (as ONNX).
#include <optional>

#include "backend/backend.h"
#include "backend/dnnl_util.h"

namespace graft::backend {

namespace {

using dnnl::normalization_flags;
using dnnl::prop_kind;

enum Input { kX = 0, kScale, kBias, kMean, kVar };

struct NormCase {
  Dims x;
  int64_t channels = 0;
  float epsilon = 1e-5f;
  bool batch_statistics = false;

  normalization_flags flags() const {
    normalization_flags f = normalization_flags::use_scale | normalization_flags::use_shift;
    return batch_statistics ? f : f | normalization_flags::use_global_stats;
  }
  // Two or three passes over x.
  int64_t cost() const { return elements_cost(3 * shape_numel(Shape(x.begin(), x.end()))); }
  std::string key(const char* what) const {
    return fmt::format("{} x{} e{} b{}", what, key_dims(x), epsilon, batch_statistics);
  }
};

// Declines per-activation statistics (spatial=0 before opset 9), other
// dtypes, and empty or oddly ranked tensors.
std::optional<NormCase> norm_case(const Node& node, const std::vector<const Tensor*>& in,
                                  bool batch_statistics) {
  const Tensor& x = *in[kX];
  if (x.rank() < 2 || x.rank() > 5 || x.numel() == 0) return std::nullopt;
  for (int i = kX; i <= kVar; ++i)
    if (!in[i] || in[i]->dtype() != DType::kF32) return std::nullopt;
  if (in[kScale]->numel() != x.dim(1)) return std::nullopt;
  NormCase k;
  k.x = to_dims(x.shape());
  k.channels = x.dim(1);
  k.epsilon = node.attr_float("epsilon", 1e-5f);
  k.batch_statistics = batch_statistics;
  return k;
}

dnnl::batch_normalization_forward::desc forward_desc(const NormCase& k, prop_kind prop) {
  return dnnl::batch_normalization_forward::desc(prop, plain_md(k.x), k.epsilon, k.flags());
}

// The inference form needs no statistics outputs; training computes them.
prop_kind forward_prop(const NormCase& k) {
  return k.batch_statistics ? prop_kind::forward_training : prop_kind::forward_inference;
}

std::shared_ptr<dnnl::batch_normalization_forward> build_forward(const NormCase& k) {
  return std::make_shared<dnnl::batch_normalization_forward>(
      dnnl::batch_normalization_forward::primitive_desc(forward_desc(k, forward_prop(k)),
                                                        engine()));
}

// out = running * momentum + batch * (1 - momentum), written when requested.
void update_running(Tensor* out, const Tensor& running, const float* batch, double factor,
                    double momentum) {
  if (!out) return;
  const float* r = running.data<float>();
  float* o = out->data<float>();
  for (int64_t i = 0; i < running.numel(); ++i)
    o[i] = static_cast<float>(r[i] * momentum + batch[i] * factor * (1.0 - momentum));
}

struct NormBackward {
  dnnl::batch_normalization_forward forward;  // recomputes the batch statistics
  dnnl::batch_normalization_backward backward;
};

std::shared_ptr<NormBackward> build_backward(const NormCase& k) {
  dnnl::batch_normalization_forward::primitive_desc hint(
      forward_desc(k, prop_kind::forward_training), engine());
  dnnl::batch_normalization_backward::primitive_desc pd(
      dnnl::batch_normalization_backward::desc(prop_kind::backward, plain_md(k.x), plain_md(k.x),
                                               k.epsilon, k.flags()),
      engine(), hint);
  auto e = std::make_shared<NormBackward>();
  e->forward = dnnl::batch_normalization_forward(hint);
  e->backward = dnnl::batch_normalization_backward(pd);
  return e;
}

memory channel_memory(const NormCase& k, const Tensor& t) {
  return wrap(plain_md({k.channels}), t);
}

}  // namespace

bool batch_norm_forward(const ops::KernelContext& c, bool batch_statistics) {
  if (!enabled()) return false;
  for (const Tensor* out : c.outputs)
    if (out && out->dtype() != DType::kF32) return false;
  std::optional<NormCase> k = norm_case(c.node, c.inputs, batch_statistics);
  if (!k) return false;
  auto prim = cached<dnnl::batch_normalization_forward>(k->key("batch_norm"), k->cost(),
                                                        [&] { return build_forward(*k); });
  if (!prim) return false;
  memory::desc x_md = plain_md(k->x), stat_md = plain_md({k->channels});
  memory mean = batch_statistics ? scratch(stat_md, kExtraSlot) : channel_memory(*k, c.in(kMean));
  memory var = batch_statistics ? scratch(stat_md, kWorkspaceSlot) : channel_memory(*k, c.in(kVar));
  execute(*prim,
          {{DNNL_ARG_SRC, wrap(x_md, c.in(kX))},
           {DNNL_ARG_DST, wrap(x_md, c.out(0))},
           {DNNL_ARG_SCALE, channel_memory(*k, c.in(kScale))},
           {DNNL_ARG_SHIFT, channel_memory(*k, c.in(kBias))},
           {DNNL_ARG_MEAN, mean},
           {DNNL_ARG_VARIANCE, var}},
          k->cost());
  if (batch_statistics) {
    double momentum = c.node.attr_float("momentum", 0.9f);
    int64_t count = c.in(kX).numel() / k->channels;
    double unbiased = c.training && count > 1 ? double(count) / double(count - 1) : 1.0;
    update_running(c.outputs.size() > 1 ? c.outputs[1] : nullptr, c.in(kMean),
                   static_cast<const float*>(mean.get_data_handle()), 1.0, momentum);
    update_running(c.outputs.size() > 2 ? c.outputs[2] : nullptr, c.in(kVar),
                   static_cast<const float*>(var.get_data_handle()), unbiased, momentum);
  }
  count_served();
  return true;
}

bool batch_norm_backward(const ops::BackwardContext& c, bool batch_statistics) {
  if (!enabled() || !c.has_grad_output(0)) return false;
  // A gradient reaching the running-statistics outputs is left to the reference.
  if (c.has_grad_output(1) || c.has_grad_output(2)) return false;
  if (!c.wants_grad(kX) && !c.wants_grad(kScale) && !c.wants_grad(kBias)) return false;
  if (!all_f32({&c.grad_out(0)})) return false;
  std::optional<NormCase> k = norm_case(c.node, c.inputs, batch_statistics);
  if (!k) return false;
  auto e = cached<NormBackward>(k->key("batch_norm_backward"), k->cost(),
                                [&] { return build_backward(*k); });
  if (!e) return false;
  memory::desc x_md = plain_md(k->x), stat_md = plain_md({k->channels});
  memory x = wrap(x_md, c.in(kX));
  memory scale = channel_memory(*k, c.in(kScale)), shift = channel_memory(*k, c.in(kBias));
  memory mean = channel_memory(*k, c.in(kMean)), var = channel_memory(*k, c.in(kVar));
  if (batch_statistics) {
    mean = scratch(stat_md, kExtraSlot);
    var = scratch(stat_md, kWorkspaceSlot);
    execute(e->forward,
            {{DNNL_ARG_SRC, x},
             {DNNL_ARG_DST, scratch(x_md, kDstSlot)},
             {DNNL_ARG_SCALE, scale},
             {DNNL_ARG_SHIFT, shift},
             {DNNL_ARG_MEAN, mean},
             {DNNL_ARG_VARIANCE, var}},
            k->cost());
  }
  auto grad_or_scratch = [&](int i, const memory::desc& md, Slot slot) {
    return c.wants_grad(i) ? wrap(md, c.grad_in(i)) : scratch(md, slot);
  };
  execute(e->backward,
          {{DNNL_ARG_SRC, x},
           {DNNL_ARG_MEAN, mean},
           {DNNL_ARG_VARIANCE, var},
           {DNNL_ARG_SCALE, scale},
           {DNNL_ARG_SHIFT, shift},  // unused, but oneDNN 2.6 insists on it
           {DNNL_ARG_DIFF_DST, wrap(x_md, c.grad_out(0))},
           {DNNL_ARG_DIFF_SRC, grad_or_scratch(kX, x_md, kDiffSrcSlot)},
           {DNNL_ARG_DIFF_SCALE, grad_or_scratch(kScale, stat_md, kDiffWeightsSlot)},
           {DNNL_ARG_DIFF_SHIFT, grad_or_scratch(kBias, stat_md, kDiffBiasSlot)}},
          k->cost());
  count_served();
  return true;
}

}  // namespace graft::backend
