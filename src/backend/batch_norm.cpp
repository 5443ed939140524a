// BatchNormalization, per-channel statistics, plain layout: the inference
// form (running statistics given) and its backward pass on oneDNN; the
// training form (batch statistics, running statistics updated) and its
// backward pass as loops over each channel's planes, parallel over channels.
// oneDNN's kernel for the plain layout (ncsp_bnorm) is slow for training:
// measured on MobileNetV2 at batch 32, 27 ms per layer forward and backward
// against about 5 ms for these loops, which read each tensor the fewest
// times the formulas allow (statistics in double).
//
// The semantics are the op's (src/ops/normalization.cpp): the running
// update is running * momentum + batch * (1 - momentum), with the unbiased
// batch variance when graft's executor trains the node (as PyTorch) and the
// biased one for a node's own training_mode=1 (as ONNX).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "graft/backend.h"

#include "backend/backend.h"
#include "backend/depthwise_avx512.h"
#include "backend/dnnl_util.h"
#include "backend/loops.h"
#include "backend/norm_planes.h"
#include "backend/norm_planes_avx512.h"

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
                                                        attributes(), engine()));
}

// The backward pass of the inference form (running statistics).
std::shared_ptr<dnnl::batch_normalization_backward> build_backward(const NormCase& k) {
  dnnl::batch_normalization_forward::primitive_desc hint(
      forward_desc(k, prop_kind::forward_training), engine());
  dnnl::batch_normalization_backward::primitive_desc pd(
      dnnl::batch_normalization_backward::desc(prop_kind::backward, plain_md(k.x), plain_md(k.x),
                                               k.epsilon, k.flags()),
      attributes(), engine(), hint);
  return std::make_shared<dnnl::batch_normalization_backward>(pd);
}

memory channel_memory(const NormCase& k, const Tensor& t) {
  return wrap(plain_md({k.channels}), t);
}

}  // namespace

// --- The per-channel loops (norm_planes.h) ---

void update_running(Tensor* out, const Tensor& running, const double* batch, double factor,
                    double momentum) {
  if (!out) return;
  const float* r = running.data<float>();
  float* o = out->data<float>();
  for (int64_t i = 0; i < running.numel(); ++i)
    o[i] = static_cast<float>(r[i] * momentum + batch[i] * factor * (1.0 - momentum));
}

void update_running(const NormActivation& f, const BatchStatistics& st, int64_t count,
                    Tensor& running_mean, Tensor& running_var) {
  const double unbiased = count > 1 ? double(count) / double(count - 1) : 1.0;
  update_running(&running_mean, running_mean, st.mean.data(), 1.0, f.momentum);
  update_running(&running_var, running_var, st.var.data(), unbiased, f.momentum);
}

BatchStatistics empty_statistics(int64_t channels) {
  return {std::vector<double>(channels), std::vector<double>(channels),
          std::vector<float>(channels)};
}

namespace {

// Sum of x - k and of (x - k)^2.
GRAFT_PLANE_LOOP PlaneSums shifted_sums(const float* x, int64_t n, float k) {
  if (has_avx512()) return avx512::shifted_sums(x, n, k);
  float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < n; ++j) {
    const float d = x[j] - k;
    s1 += d;
    s2 += d * d;
  }
  return {s1, s2};
}

}  // namespace

void channel_statistics(const float* x, int64_t n, int64_t stride, int64_t plane, int64_t c,
                        BatchStatistics& st) {
  const float k = x[0];
  PlaneSums sums;
  for (int64_t i = 0; i < n; ++i) {
    if (stride != plane && i + 1 < n) prefetch_plane(x + (i + 1) * stride, plane);
    sums += shifted_sums(x + i * stride, plane, k);
  }
  set_statistics(st, c, k, sums, static_cast<double>(n * plane));
}

void set_statistics(BatchStatistics& st, int64_t c, float k, const PlaneSums& sums, double count) {
  const double shifted_mean = sums.first / count;
  st.k[c] = k;
  st.mean[c] = k + shifted_mean;
  st.var[c] = std::max(0.0, sums.second / count - shifted_mean * shifted_mean);
}

// Centred first, since x * a - mean * a would cancel when the mean is large.
Affine affine_of(const BatchStatistics& st, int64_t c, const float* scale, const float* shift,
                 double epsilon) {
  return {st.k[c], st.centre(c), static_cast<float>(scale[c] / std::sqrt(st.var[c] + epsilon)),
          shift[c]};
}

GRAFT_PLANE_LOOP void normalize_plane(const float* x, float* y, int64_t n, Affine f, float lo,
                                      float hi, Store store) {
  if (streams(store, n) && has_avx512())
    return avx512::normalize_plane_streamed(x, y, n, f, lo, hi);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] = std::min(std::max(f(x[j]), lo), hi);
}

GRAFT_PLANE_LOOP PlaneSums gradient_sums(const float* x, const float* dy, int64_t n, Affine f,
                                         float lo, float hi) {
  if (has_avx512()) return avx512::gradient_sums(x, dy, n, f, lo, hi);
  float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < n; ++j) {
    const float g = passed(dy[j], f(x[j]), lo, hi);
    s1 += g;
    s2 += g * ((x[j] - f.k) - f.centre);
  }
  return {s1, s2};
}

// With xhat = (x - mean) * inv_std and g the passed gradient:
//   dshift = sum g, dscale = sum g * xhat,
//   dx = scale * inv_std * (g - dshift / M - xhat * dscale / M),
// folded into dx = q * (x - mean) + b * g + r.
ChannelGradient channel_gradient(const BatchStatistics& st, int64_t c, double count, float scale,
                                 double epsilon, PlaneSums sums) {
  const double inv_std = 1.0 / std::sqrt(st.var[c] + epsilon);
  const double dscale = sums.second * inv_std;
  const double b = scale * inv_std;
  return {static_cast<float>(-b * inv_std * dscale / count), static_cast<float>(b),
          static_cast<float>(-b * sums.first / count), dscale, sums.first};
}

GRAFT_PLANE_LOOP void gradient_plane(const float* x, const float* dy, float* dx, int64_t n,
                                     Affine f, float lo, float hi, ChannelGradient g, Store store) {
  if (streams(store, n) && has_avx512())
    return avx512::gradient_plane_streamed(x, dy, dx, n, f, lo, hi, g);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j)
    dx[j] = g.q * ((x[j] - f.k) - f.centre) + g.b * passed(dy[j], f(x[j]), lo, hi) + g.r;
}

namespace {

// x viewed as N planes of `plane` values per channel.
struct Planes {
  int64_t n, channels, plane;
  explicit Planes(const Tensor& x)
      : n(x.dim(0)), channels(x.dim(1)), plane(x.numel() / (x.dim(0) * x.dim(1))) {}
  int64_t count() const { return n * plane; }
  int64_t offset(int64_t image, int64_t c) const { return (image * channels + c) * plane; }
  void statistics(const float* x, int64_t c, BatchStatistics& st) const {
    channel_statistics(x + offset(0, c), n, channels * plane, plane, c, st);
  }
};

BatchStatistics statistics_of(const Planes& p, const float* x) {
  BatchStatistics st = empty_statistics(p.channels);
#pragma omp parallel for num_threads(loop_threads(p.n * p.channels * p.plane)) schedule(static)
  for (int64_t c = 0; c < p.channels; ++c) p.statistics(x, c, st);
  return st;
}

// The mean of clamp(f(x), lo, hi) over a plane.
GRAFT_PLANE_LOOP float normalized_mean(const float* x, int64_t n, Affine f, float lo, float hi) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += std::min(std::max(f(x[j]), lo), hi);
  return s / static_cast<float>(n);
}

// y = clamp((x - mean) / sqrt(var + eps) * scale + shift, lo, hi) with the
// batch's statistics, which are returned (biased variance); with `pools`,
// y holds each plane's mean of that instead.
BatchStatistics batch_norm_training(const Planes& p, const float* x, const float* scale,
                                    const float* shift, double epsilon, float lo, float hi,
                                    bool pools, float* y) {
  BatchStatistics st = empty_statistics(p.channels);
  // A channel's planes fit in L2 (1.6 MB at MobileNetV2's largest, batch
  // 32): the normalising pass reads them from there, not from memory.
#pragma omp parallel for num_threads(loop_threads(p.n * p.channels * p.plane)) schedule(static)
  for (int64_t c = 0; c < p.channels; ++c) {
    p.statistics(x, c, st);
    const Affine f = affine_of(st, c, scale, shift, epsilon);
    for (int64_t i = 0; i < p.n; ++i)
      if (pools)
        y[i * p.channels + c] = normalized_mean(x + p.offset(i, c), p.plane, f, lo, hi);
      else
        normalize_plane(x + p.offset(i, c), y + p.offset(i, c), p.plane, f, lo, hi,
                        Store::kStreamed);
  }
  return st;
}

// The gradients of the training form (channel_gradient), dy reaching the
// clamped output, or with `pools` its planes' means (each value's gradient
// then that of its plane's mean, over the plane's size). Any of dx, dscale,
// dshift may be nullptr (not wanted).
void batch_norm_training_backward(const Planes& p, const BatchStatistics& st, const float* x,
                                  const float* dy, const float* scale, const float* shift,
                                  double epsilon, float lo, float hi, bool pools, float* dx,
                                  float* dscale, float* dshift) {
#pragma omp parallel for num_threads(loop_threads(p.n * p.channels * p.plane)) schedule(static)
  for (int64_t c = 0; c < p.channels; ++c) {
    // Image i's gradient plane: dy's, or its mean's spread over the plane.
    thread_local std::vector<float> spread;
    auto dy_plane = [&](int64_t i) {
      if (!pools) return dy + p.offset(i, c);
      spread.assign(p.plane, dy[i * p.channels + c] / static_cast<float>(p.plane));
      return static_cast<const float*>(spread.data());
    };
    const Affine f = affine_of(st, c, scale, shift, epsilon);
    PlaneSums sums;
    for (int64_t i = 0; i < p.n; ++i) {
      if (i + 1 < p.n) {
        prefetch_plane(x + p.offset(i + 1, c), p.plane);
        if (!pools) prefetch_plane(dy + p.offset(i + 1, c), p.plane);
      }
      sums += gradient_sums(x + p.offset(i, c), dy_plane(i), p.plane, f, lo, hi);
    }
    const ChannelGradient g = channel_gradient(st, c, double(p.count()), scale[c], epsilon, sums);
    if (dshift) dshift[c] = static_cast<float>(g.dshift);
    if (dscale) dscale[c] = static_cast<float>(g.dscale);
    if (!dx) continue;
    for (int64_t i = 0; i < p.n; ++i)
      gradient_plane(x + p.offset(i, c), dy_plane(i), dx + p.offset(i, c), p.plane, f, lo, hi, g,
                     Store::kStreamed);
  }
}

constexpr float kUnbounded = std::numeric_limits<float>::infinity();

}  // namespace

bool batch_norm_forward(const ops::KernelContext& c, bool batch_statistics) {
  if (!enabled()) return false;
  for (const Tensor* out : c.outputs)
    if (out && out->dtype() != DType::kF32) return false;
  std::optional<NormCase> k = norm_case(c.node, c.inputs, batch_statistics);
  if (!k) return false;
  // The statistics outputs this path does not compute are zero, as in the
  // reference: all of them in the inference form, the saved ones (opset < 9)
  // in training.
  for (size_t i = batch_statistics ? 3 : 1; i < c.outputs.size(); ++i)
    if (c.outputs[i]) std::memset(c.outputs[i]->raw(), 0, c.outputs[i]->nbytes());
  if (batch_statistics) {
    BatchStatistics st =
        batch_norm_training(Planes(c.in(kX)), c.in(kX).data<float>(), c.in(kScale).data<float>(),
                            c.in(kBias).data<float>(), k->epsilon, -kUnbounded, kUnbounded, false,
                            c.out(0).data<float>());
    double momentum = c.node.attr_float("momentum", 0.9f);
    int64_t count = c.in(kX).numel() / k->channels;
    double unbiased = c.training && count > 1 ? double(count) / double(count - 1) : 1.0;
    update_running(c.outputs.size() > 1 ? c.outputs[1] : nullptr, c.in(kMean), st.mean.data(), 1.0,
                   momentum);
    update_running(c.outputs.size() > 2 ? c.outputs[2] : nullptr, c.in(kVar), st.var.data(), unbiased,
                   momentum);
    count_served();
    return true;
  }
  auto prim = cached<dnnl::batch_normalization_forward>(k->key("batch_norm"), k->cost(),
                                                        [&] { return build_forward(*k); });
  if (!prim) return false;
  memory::desc x_md = plain_md(k->x);
  execute(*prim,
          {{DNNL_ARG_SRC, wrap(x_md, c.in(kX))},
           {DNNL_ARG_DST, wrap(x_md, c.out(0))},
           {DNNL_ARG_SCALE, channel_memory(*k, c.in(kScale))},
           {DNNL_ARG_SHIFT, channel_memory(*k, c.in(kBias))},
           {DNNL_ARG_MEAN, channel_memory(*k, c.in(kMean))},
           {DNNL_ARG_VARIANCE, channel_memory(*k, c.in(kVar))}},
          k->cost());
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
  if (batch_statistics) {
    auto grad = [&](int i) { return c.wants_grad(i) ? c.grad_in(i).data<float>() : nullptr; };
    const Planes p(c.in(kX));
    batch_norm_training_backward(
        p, statistics_of(p, c.in(kX).data<float>()), c.in(kX).data<float>(),
        c.grad_out(0).data<float>(), c.in(kScale).data<float>(), c.in(kBias).data<float>(),
        k->epsilon, -kUnbounded, kUnbounded, false, grad(kX), grad(kScale), grad(kBias));
    count_served();
    return true;
  }
  auto backward = cached<dnnl::batch_normalization_backward>(
      k->key("batch_norm_backward"), k->cost(), [&] { return build_backward(*k); });
  if (!backward) return false;
  memory::desc x_md = plain_md(k->x), stat_md = plain_md({k->channels});
  auto grad_or_scratch = [&](int i, const memory::desc& md, Slot slot) {
    return c.wants_grad(i) ? wrap(md, c.grad_in(i)) : scratch(md, slot);
  };
  execute(*backward,
          {{DNNL_ARG_SRC, wrap(x_md, c.in(kX))},
           {DNNL_ARG_MEAN, channel_memory(*k, c.in(kMean))},
           {DNNL_ARG_VARIANCE, channel_memory(*k, c.in(kVar))},
           {DNNL_ARG_SCALE, channel_memory(*k, c.in(kScale))},
           {DNNL_ARG_SHIFT, channel_memory(*k, c.in(kBias))},  // unused, but oneDNN 2.6 insists on it
           {DNNL_ARG_DIFF_DST, wrap(x_md, c.grad_out(0))},
           {DNNL_ARG_DIFF_SRC, grad_or_scratch(kX, x_md, kDiffSrcSlot)},
           {DNNL_ARG_DIFF_SCALE, grad_or_scratch(kScale, stat_md, kDiffWeightsSlot)},
           {DNNL_ARG_DIFF_SHIFT, grad_or_scratch(kBias, stat_md, kDiffBiasSlot)}},
          k->cost());
  count_served();
  return true;
}

bool fuses_norm_activation(const Shape& x, DType dtype) {
  return enabled() && dtype == DType::kF32 && x.size() >= 2 && shape_numel(x) > 0;
}

BatchStatistics norm_activation_forward(const NormActivation& f, const Tensor& x,
                                        const Tensor& scale, const Tensor& shift,
                                        Tensor& running_mean, Tensor& running_var, Tensor& y) {
  const Planes p(x);
  BatchStatistics st =
      batch_norm_training(p, x.data<float>(), scale.data<float>(), shift.data<float>(), f.epsilon,
                          f.lo, f.hi, f.pools, y.data<float>());
  update_running(f, st, p.count(), running_mean, running_var);
  count_served();
  return st;
}

void norm_activation_backward(const NormActivation& f, const BatchStatistics& st, const Tensor& x,
                              const Tensor& scale, const Tensor& shift, const Tensor& dy,
                              Tensor* dx, Tensor* dscale, Tensor* dshift) {
  auto data = [](Tensor* t) { return t ? t->data<float>() : nullptr; };
  batch_norm_training_backward(Planes(x), st, x.data<float>(), dy.data<float>(),
                               scale.data<float>(), shift.data<float>(), f.epsilon, f.lo, f.hi,
                               f.pools, data(dx), data(dscale), data(dshift));
  count_served();
}

}  // namespace graft::backend
