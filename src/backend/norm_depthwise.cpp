// BatchNormalization + activation, depthwise Conv, BatchNormalization +
// activation in training as one step (backend.h), channel by channel with
// the planes of BatchNormalization's loops (norm_planes.h) and of the
// depthwise kernels (depthwise_planes.h).
#include <omp.h>

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

// Whether the threads share each channel of the backward pass, each on its
// own images, rather than each taking channels of its own. When a channel's
// input planes (n x 112 x 112 at batch 32: 1.6 MB) and their gradient do
// not fit a core's L2 beside each other, the last pass reads them again
// from memory; shared, a thread's half stays in its L2 from the first pass
// to the last. In the W3 step, 96x112 at stride 2 and 32x112 took 3.4-7.0
// and 1.4-2.1 ms less (34-41 and 20-23 ms before); at 56x56 no gain.
bool shares_channels(const NormDepthwiseShape& k, bool wants_dx) {
  constexpr int64_t kSharedFrom = int64_t{1} << 20;  // bytes of one channel's input planes
  return wants_dx && k.n * k.p.size() * int64_t(sizeof(float)) >= kSharedFrom;
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
  // Each thread's sums of a channel, added in thread order when shared.
  struct Part {
    PlaneSums sums2, sums1;
    std::vector<double> dw;
    double db = 0;
  };
  std::vector<Part> parts(loop_threads(in.x->numel()));
#pragma omp parallel num_threads(parts.size())
  {
    const int t = omp_get_thread_num(), threads = omp_get_num_threads();
    const bool shared = threads > 1 && k.n >= threads && shares_channels(k, dx != nullptr);
    // This thread's channels [c0, c1) and, of each, images [i0, i1).
    const int64_t c0 = shared ? 0 : k.channels * t / threads;
    const int64_t c1 = shared ? k.channels : k.channels * (t + 1) / threads;
    const int64_t i0 = shared ? k.n * t / threads : 0, i1 = shared ? k.n * (t + 1) / threads : k.n;
    const auto all = [&](auto value) {  // a channel's sum over the threads that share it
      if (!shared) return value(parts[t]);
      decltype(value(parts[t])) sum{};
      for (int u = 0; u < threads; ++u) sum += value(parts[u]);
      return sum;
    };
    Part& mine = parts[t];
    // dy1: the gradient reaching the first activation's output, of each of
    // this thread's images when dx is wanted (dx may be x's own storage,
    // read until the last pass), else of one image at a time.
    thread_local std::vector<float> dx2, dy1;
    dx2.resize(out_size);
    dy1.resize(dx ? (i1 - i0) * in_size : in_size);
    for (int64_t c = c0; c < c1; ++c) {
      const Affine f1 = affine_of(before, c, data(in.scale1), data(in.shift1), f.before.epsilon);
      const Affine f2 = affine_of(after, c, data(in.scale2), data(in.shift2), f.after.epsilon);
      const InputMap map1{f1, f.before.lo, f.before.hi};
      // The second normalisation's sums.
      const float* x2 = st.conv_output.data<float>() + c * k.n * out_size;
      mine.sums2 = {};
      for (int64_t i = i0; i < i1; ++i) {
        if (i + 1 < i1) prefetch_plane(dy.data<float>() + k.out_at(i + 1, c), out_size);
        mine.sums2 += gradient_sums(x2 + i * out_size, dy.data<float>() + k.out_at(i, c), out_size,
                                    f2, f.after.lo, f.after.hi);
      }
      if (shared) {
#pragma omp barrier
      }
      const ChannelGradient g2 =
          channel_gradient(after, c, double(k.n * out_size), data(in.scale2)[c], f.after.epsilon,
                           all([](const Part& p) { return p.sums2; }));
      // Per image: the gradient reaching the convolution's output (dx2), its
      // weights' and input's gradients, and the first normalisation's sums.
      mine.dw.assign(k.taps, 0.0);
      mine.db = 0;
      mine.sums1 = {};
      for (int64_t i = i0; i < i1; ++i) {
        if (i + 1 < i1) prefetch_plane(x + k.in_at(i + 1, c), in_size);
        gradient_plane(x2 + i * out_size, dy.data<float>() + k.out_at(i, c), dx2.data(), out_size,
                       f2, f.after.lo, f.after.hi, g2, Store::kCached);
        if (grads.dw || grads.db)
          weights_plane(k.p, x + k.in_at(i, c), dx2.data(), mine.dw.data(),
                        grads.db ? &mine.db : nullptr, &map1);
        if (!wants_dy1) continue;
        float* d1 = dy1.data() + (dx ? (i - i0) * in_size : 0);
        backward_data_plane(k.p, dx2.data(), turned.data() + c * k.taps, d1);
        mine.sums1 += gradient_sums(x + k.in_at(i, c), d1, in_size, f1, f.before.lo, f.before.hi);
      }
      if (shared) {
#pragma omp barrier
      }
      const ChannelGradient g1 =
          channel_gradient(before, c, double(k.n * in_size), data(in.scale1)[c], f.before.epsilon,
                           all([](const Part& p) { return p.sums1; }));
      if (t == 0 || !shared) {
        if (grads.dscale2) data(grads.dscale2)[c] = static_cast<float>(g2.dscale);
        if (grads.dshift2) data(grads.dshift2)[c] = static_cast<float>(g2.dshift);
        for (int64_t tap = 0; grads.dw && tap < k.taps; ++tap)
          data(grads.dw)[c * k.taps + tap] =
              static_cast<float>(all([tap](const Part& p) { return p.dw[tap]; }));
        if (grads.db)
          data(grads.db)[c] = static_cast<float>(all([](const Part& p) { return p.db; }));
        if (wants_dy1) {
          if (grads.dscale1) data(grads.dscale1)[c] = static_cast<float>(g1.dscale);
          if (grads.dshift1) data(grads.dshift1)[c] = static_cast<float>(g1.dshift);
        }
      }
      if (dx)
        for (int64_t i = i0; i < i1; ++i)
          gradient_plane(x + k.in_at(i, c), dy1.data() + (i - i0) * in_size, dx + k.in_at(i, c),
                         in_size, f1, f.before.lo, f.before.hi, g1, Store::kCached);
    }
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
