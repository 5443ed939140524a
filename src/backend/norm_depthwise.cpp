// BatchNormalization + activation, depthwise Conv, BatchNormalization +
// activation in training as one step (backend.h), channel by channel with
// the planes of BatchNormalization's loops (norm_planes.h) and of the
// depthwise kernels (depthwise_planes.h).
#include <optional>
#include <vector>

#include "backend/norm_depthwise_lanes.h"

namespace graft::backend {

namespace {

NormDepthwiseShape shape_of(const NormDepthwise& f, const NormDepthwiseInputs& in) {
  std::optional<ConvCase> k = conv_case(f.conv, in.x->shape(), in.w->shape(), in.b != nullptr);
  GRAFT_ASSERT(k && k->depthwise());
  return {plane_of(*k), in.x->dim(0), in.x->dim(1), k->w[3] * k->w[4]};
}

// The forward pass plane by plane, channel by channel: channel c's
// convolution output for every image (x2, n planes) from x, normalised as it
// is read, kept in st.conv_output.
void planes_forward(const NormDepthwise& f, const NormDepthwiseInputs& in,
                    const NormDepthwiseShape& k, NormDepthwiseStatistics& st, Tensor& y) {
  const int64_t in_size = k.p.size(), out_size = k.p.out_size();
  st.conv_output = Tensor::uninitialized(DType::kF32, {k.channels, k.n, k.p.oh, k.p.ow});
  const float* x = data(in.x);
#pragma omp parallel for num_threads(loop_threads(in.x->numel())) schedule(static)
  for (int64_t c = 0; c < k.channels; ++c) {
    channel_statistics(x + k.in_at(0, c), k.n, k.channels * in_size, in_size, c, st.before);
    const InputMap map1{affine_of(st.before, c, data(in.scale1), data(in.shift1), f.before.epsilon),
                        f.before.lo, f.before.hi};
    float* x2 = st.conv_output.data<float>() + c * k.n * out_size;
    const float* w = data(in.w) + c * k.taps;
    const float b = in.b ? data(in.b)[c] : 0.0f;
    for (int64_t i = 0; i < k.n; ++i) {
      if (i + 1 < k.n) prefetch_plane(x + k.in_at(i + 1, c), in_size);
      forward_plane(k.p, x + k.in_at(i, c), w, b, x2 + i * out_size, &map1);
    }
    channel_statistics(x2, k.n, out_size, out_size, c, st.after);
    const Affine f2 = affine_of(st.after, c, data(in.scale2), data(in.shift2), f.after.epsilon);
    for (int64_t i = 0; i < k.n; ++i)
      normalize_plane(x2 + i * out_size, y.data<float>() + k.out_at(i, c), out_size, f2, f.after.lo,
                      f.after.hi, Store::kStreamed);
  }
}

// The backward pass plane by plane, channel by channel.
void planes_backward(const NormDepthwise& f, const NormDepthwiseStatistics& st,
                     const NormDepthwiseInputs& in, const NormDepthwiseShape& k, const Tensor& dy,
                     const NormDepthwiseGradients& grads) {
  const BatchStatistics &before = st.before, &after = st.after;
  GRAFT_ASSERT(st.conv_output.defined());
  const int64_t in_size = k.p.size(), out_size = k.p.out_size();
  const std::vector<float> turned = turned_kernels(data(in.w), k.channels, k.taps);
  const float* x = data(in.x);
  float* dx = data(grads.dx);
  const bool wants_dy1 = grads.dx || grads.dscale1 || grads.dshift1;
#pragma omp parallel for num_threads(loop_threads(in.x->numel())) schedule(static)
  for (int64_t c = 0; c < k.channels; ++c) {
    // dy1: the gradient reaching the first activation's output, every
    // image's when dx is wanted (dx may be x's own storage, read until the
    // last pass), else one image's at a time.
    thread_local std::vector<float> dx2, dy1;
    dx2.resize(out_size);
    dy1.resize(dx ? k.n * in_size : in_size);
    const Affine f1 = affine_of(before, c, data(in.scale1), data(in.shift1), f.before.epsilon);
    const Affine f2 = affine_of(after, c, data(in.scale2), data(in.shift2), f.after.epsilon);
    const InputMap map1{f1, f.before.lo, f.before.hi};
    // The second normalisation's sums.
    const float* x2 = st.conv_output.data<float>() + c * k.n * out_size;
    PlaneSums sums2;
    for (int64_t i = 0; i < k.n; ++i) {
      if (i + 1 < k.n) prefetch_plane(dy.data<float>() + k.out_at(i + 1, c), out_size);
      sums2 += gradient_sums(x2 + i * out_size, dy.data<float>() + k.out_at(i, c), out_size, f2,
                             f.after.lo, f.after.hi);
    }
    const ChannelGradient g2 = channel_gradient(after, c, double(k.n * out_size),
                                                data(in.scale2)[c], f.after.epsilon, sums2);
    if (grads.dscale2) data(grads.dscale2)[c] = static_cast<float>(g2.dscale);
    if (grads.dshift2) data(grads.dshift2)[c] = static_cast<float>(g2.dshift);
    // Per image: the gradient reaching the convolution's output (dx2), its
    // weights' and input's gradients, and the first normalisation's sums.
    std::vector<double> dw(k.taps, 0.0);
    double db = 0;
    PlaneSums sums1;
    for (int64_t i = 0; i < k.n; ++i) {
      if (i + 1 < k.n) prefetch_plane(x + k.in_at(i + 1, c), in_size);
      gradient_plane(x2 + i * out_size, dy.data<float>() + k.out_at(i, c), dx2.data(), out_size, f2,
                     f.after.lo, f.after.hi, g2, Store::kCached);
      if (grads.dw || grads.db)
        weights_plane(k.p, x + k.in_at(i, c), dx2.data(), dw.data(), grads.db ? &db : nullptr,
                      &map1);
      if (!wants_dy1) continue;
      float* d1 = dy1.data() + (dx ? i * in_size : 0);
      backward_data_plane(k.p, dx2.data(), turned.data() + c * k.taps, d1);
      sums1 += gradient_sums(x + k.in_at(i, c), d1, in_size, f1, f.before.lo, f.before.hi);
    }
    if (grads.dw)
      for (int64_t t = 0; t < k.taps; ++t)
        data(grads.dw)[c * k.taps + t] = static_cast<float>(dw[t]);
    if (grads.db) data(grads.db)[c] = static_cast<float>(db);
    if (!wants_dy1) continue;
    const ChannelGradient g1 = channel_gradient(before, c, double(k.n * in_size),
                                                data(in.scale1)[c], f.before.epsilon, sums1);
    if (grads.dscale1) data(grads.dscale1)[c] = static_cast<float>(g1.dscale);
    if (grads.dshift1) data(grads.dshift1)[c] = static_cast<float>(g1.dshift);
    if (dx)
      for (int64_t i = 0; i < k.n; ++i)
        gradient_plane(x + k.in_at(i, c), dy1.data() + i * in_size, dx + k.in_at(i, c), in_size, f1,
                       f.before.lo, f.before.hi, g1, Store::kCached);
  }
}

}  // namespace

bool fuses_norm_depthwise(const Node& conv, const Shape& x, const Shape& w, bool bias) {
  if (!enabled()) return false;
  std::optional<ConvCase> k = conv_case(conv, x, w, bias);
  return k && k->depthwise();
}

bool norm_depthwise_channels_last(const Node& conv, const Shape& x, const Shape& w, bool bias) {
  if (!enabled()) return false;
  std::optional<ConvCase> k = conv_case(conv, x, w, bias);
  return k && k->depthwise() && runs_in_lanes(plane_of(*k));
}

NormDepthwiseStatistics norm_depthwise_forward(const NormDepthwise& f,
                                               const NormDepthwiseInputs& in, Tensor& mean1,
                                               Tensor& var1, Tensor& mean2, Tensor& var2,
                                               Tensor& y) {
  const NormDepthwiseShape k = shape_of(f, in);
  NormDepthwiseStatistics st{empty_statistics(k.channels), empty_statistics(k.channels), {}};
  GRAFT_ASSERT(runs_in_lanes(k.p) || !(f.x_channels_last || f.y_channels_last));
  if (runs_in_lanes(k.p))
    lanes_forward(f, in, k, st, y);
  else
    planes_forward(f, in, k, st, y);
  update_running(f.before, st.before, k.n * k.p.size(), mean1, var1);
  update_running(f.after, st.after, k.n * k.p.out_size(), mean2, var2);
  count_served();
  return st;
}

void norm_depthwise_backward(const NormDepthwise& f, const NormDepthwiseStatistics& st,
                             const NormDepthwiseInputs& in, const Tensor& dy,
                             const NormDepthwiseGradients& grads) {
  const NormDepthwiseShape k = shape_of(f, in);
  GRAFT_ASSERT(runs_in_lanes(k.p) || !(f.x_channels_last || f.y_channels_last));
  if (runs_in_lanes(k.p))
    lanes_backward(f, st.before, st.after, in, k, dy, grads);
  else
    planes_backward(f, st, in, k, dy, grads);
  count_served();
}

}  // namespace graft::backend
