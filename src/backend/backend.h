// The fast kernels the ops dispatch to: an op registers them as its
// fast_compute / fast_backward (ops/op.h), tried before its reference
// kernel. Each returns true when it has written every output the context
// asks for (they arrive with unspecified contents), false when it declines:
// the reference kernels are forced (graft/backend.h), a dtype other than
// float32, or a case oneDNN cannot do. After a declining call the outputs
// are zeroed and the reference kernel runs (ops::run_compute / run_backward).
//
// The ops' own helpers (window geometry, attributes) describe the case, so
// the two paths cannot read a node differently.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/op.h"

namespace graft::backend {

// Conv: Y (and its gradients dX, dW, dB), 1-D to 3-D, grouped and depthwise.
bool conv_forward(const ops::KernelContext& c);
bool conv_backward(const ops::BackwardContext& c);

// A pointwise Conv in training whose input or output (and that value's
// gradient) is stored channels-last: N x H x W x C in the memory of the
// value's N x C x H x W tensor. The execution plan (plan.h) stores so a
// value between such a Conv and a fused depthwise step on small planes,
// which both work channels-last inside (pointwise.cpp, norm_depthwise_lanes.cpp):
// the value then needs no reorder on either side.
struct ConvLayout {
  bool x_channels_last = false, y_channels_last = false;
};
// Whether these two take Conv `conv` (input x, weights w) in any layout.
bool serves_conv_layout(const Node& conv, const Shape& x, const Shape& w, bool bias);
void conv_forward_in_layout(const ops::KernelContext& c, ConvLayout layout);
void conv_backward_in_layout(const ops::BackwardContext& c, ConvLayout layout);

// MaxPool (without the Indices output), AveragePool and GlobalAveragePool.
bool pool_forward(const ops::KernelContext& c);
bool pool_backward(const ops::BackwardContext& c);
// GlobalAveragePool of float32 x (N, C, H, W) stored channels-last, as the
// plan keeps a fused convolution's output for it, into y (N, C, 1, 1).
void global_average_pool_channels_last(const Tensor& x, Tensor& y);

// BatchNormalization with one statistic per channel. `batch_statistics`:
// the op runs its training form (normalise with the batch's mean and
// variance, update the running statistics) rather than its inference form.
bool batch_norm_forward(const ops::KernelContext& c, bool batch_statistics);
bool batch_norm_backward(const ops::BackwardContext& c, bool batch_statistics);

bool gemm_forward(const ops::KernelContext& c);
bool gemm_backward(const ops::BackwardContext& c);
bool matmul_forward(const ops::KernelContext& c);
bool matmul_backward(const ops::BackwardContext& c);

// Relu, LeakyRelu, Sigmoid, Tanh and HardSwish, told apart by the node's
// op type; other element-wise ops decline.
bool activation_forward(const ops::KernelContext& c);
bool activation_backward(const ops::BackwardContext& c);
// Add, Sub and Mul of two float32 tensors of the same shape (no broadcast).
bool binary_forward(const ops::KernelContext& c);
bool binary_backward(const ops::BackwardContext& c);
// Clip with the bounds the op has read (attributes or inputs by opset).
bool clip_forward(const ops::KernelContext& c, float lo, float hi);
bool clip_backward(const ops::BackwardContext& c, float lo, float hi);

// Softmax (or LogSoftmax when `log`) along lines of `len` elements spaced
// `inner` apart, `outer * inner` of them: the op's reading of its axis.
struct SoftmaxLines {
  int64_t outer = 1, len = 1, inner = 1;
};
bool softmax_forward(const ops::KernelContext& c, SoftmaxLines lines, bool log);
bool softmax_backward(const ops::BackwardContext& c, SoftmaxLines lines, bool log);

// --- BatchNormalization in training with the activation after it ----------
//
// The training plan runs a BatchNormalization that uses batch statistics,
// together with the Clip or Relu that alone reads its output, as one step:
// forward, one pass for the statistics and one writing the activation's
// output; backward, the gradient reaching that output is masked where the
// activation passed it, recomputed from x and the kept statistics. So the
// normalised values are never stored, and the activation costs no pass of
// its own either way.
struct BatchStatistics {
  std::vector<double> mean, var;  // per channel; biased variance
  std::vector<float> k;           // a value of the channel, the sums' shift
  // x - mean, computed as (x - k) - (mean - k).
  float centre(int64_t c) const { return static_cast<float>(mean[c] - k[c]); }
};
struct NormActivation {
  double epsilon = 1e-5, momentum = 0.9;  // the BatchNormalization's
  float lo = 0, hi = 0;                   // the activation's bounds (Relu: 0, infinity)
  // y is the mean of each plane (N x C x 1 ... 1): a GlobalAveragePool
  // after the activation, whose input is then never stored.
  bool pools = false;
};
// Whether the fast kernels take a BatchNormalization of input x.
bool fuses_norm_activation(const Shape& x, DType dtype);
// y = clamp(batch_norm(x), lo, hi); running_mean and running_var are
// updated in place (unbiased batch variance, as PyTorch). Returns the
// batch's statistics for the backward pass.
BatchStatistics norm_activation_forward(const NormActivation& f, const Tensor& x,
                                        const Tensor& scale, const Tensor& shift,
                                        Tensor& running_mean, Tensor& running_var, Tensor& y);
// From dy, the gradient reaching y: dx, dscale, dshift (nullptr: not wanted).
void norm_activation_backward(const NormActivation& f, const BatchStatistics& st, const Tensor& x,
                              const Tensor& scale, const Tensor& shift, const Tensor& dy,
                              Tensor* dx, Tensor* dscale, Tensor* dshift);

// --- A depthwise Conv between two of them, in training --------------------
//
// MobileNetV2's block middle, BatchNormalization + activation, depthwise
// Conv, BatchNormalization + activation, as one step that works channel by
// channel: a channel's planes (all images) fit in L2, so between reading
// the step's input and writing its output nothing goes to memory but the
// convolution's output, kept for the backward. The first activation's output
// is not stored; backward recomputes it from the input as it reads it.
// Forward reads x and writes y and the convolution's output, backward reads
// them with dy and writes dx, where the five ops apart move about three
// times as much. On planes of 7x7 and less (sixteen channels side by side)
// the backward recomputes the convolution too, and nothing is kept.
struct NormDepthwise {
  NormActivation before, after;
  Node conv;  // the depthwise Conv: its window
  // x and dx, or y and dy, stored channels-last (ConvLayout): only where
  // norm_depthwise_channels_last says the step can.
  bool x_channels_last = false, y_channels_last = false;
};
// Whether the step takes depthwise Conv `conv` with input x and weights w;
// and whether it can also read and write channels-last values.
bool fuses_norm_depthwise(const Node& conv, const Shape& x, const Shape& w, bool bias);
bool norm_depthwise_channels_last(const Node& conv, const Shape& x, const Shape& w, bool bias);
struct NormDepthwiseInputs {
  const Tensor *x, *scale1, *shift1, *w, *b, *scale2, *shift2;  // b: nullptr when none
};
struct NormDepthwiseStatistics {
  BatchStatistics before, after;
  // The convolution's output before the second normalisation, channel by
  // channel (C, N, H, W), for the backward: recomputing it there cost a
  // fifth of the backward (W3's 96x112x112 block at batch 32: 64-68 ms
  // recomputing, 52 ms reading it). Undefined on small planes.
  Tensor conv_output;
};
// y = after(conv(before(x))); the running statistics (mean1 ... var2) are
// updated in place, as norm_activation_forward does.
NormDepthwiseStatistics norm_depthwise_forward(const NormDepthwise& f,
                                               const NormDepthwiseInputs& in, Tensor& mean1,
                                               Tensor& var1, Tensor& mean2, Tensor& var2,
                                               Tensor& y);
// From dy, the gradient reaching y, and what the forward kept; each
// gradient nullptr when not wanted. dx may be x's own storage.
struct NormDepthwiseGradients {
  Tensor *dx, *dscale1, *dshift1, *dw, *db, *dscale2, *dshift2;
};
void norm_depthwise_backward(const NormDepthwise& f, const NormDepthwiseStatistics& st,
                             const NormDepthwiseInputs& in, const Tensor& dy,
                             const NormDepthwiseGradients& grads);

// --- Fused convolutions: the execution plan's fast path -------------------
//
// A Conv of a graph's frozen part run as one oneDNN primitive together with
// what follows it: a BatchNormalization folded into its weights (by the
// plan), then post-ops applied to each output element before it is stored,
// in order: activations, a sum with an addend (a residual Add), and a 3x3
// depthwise convolution (padding 1) of a pointwise one's output, with its
// own folded BatchNormalization, so that the wide intermediate never goes
// to memory. The weights are reordered once, when the convolution is made,
// not per run. Activations between such convolutions may be stored
// channels-last (NHWC) so that a chain of them runs without any reorder.
struct ConvPostOp {
  const Node* activation = nullptr;  // nullptr: add the addend, or the depthwise convolution
  float clip_lo = 0, clip_hi = 0;    // Clip's bounds
  bool depthwise = false;            // the spec's depthwise convolution
};
struct FusedConvSpec {
  Node conv;                   // its pads may include a Pad the plan fused in
  Shape x;                     // the input's shape, NCHW order whatever the storage
  Tensor weights, bias;        // bias may be undefined
  std::vector<ConvPostOp> post;
  Tensor dw_weights, dw_bias;  // the depthwise post-op's (C, 1, 3, 3) and (C)
  int64_t dw_stride = 1;
  bool x_channels_last = false;
  bool y_channels_last = false;  // of the output and the addend
};
class FusedConv;
// nullptr when the fast kernels are off or oneDNN has no fast kernel for
// the case (the plan then runs the nodes one by one).
std::shared_ptr<FusedConv> make_fused_conv(const FusedConvSpec& spec);
// y = post-ops(conv(x)); `addend` (in y's layout) when the spec has a sum.
void run_fused_conv(FusedConv& conv, const Tensor& x, const Tensor* addend, Tensor& y);

// How many op calls the fast kernels have served on this thread: tests use
// it to see which path ran.
int64_t served_count();

}  // namespace graft::backend
