// Keras' windowed layers -> graft nodes: Conv2D, DepthwiseConv2D,
// SeparableConv2D (kernels HWIO -> OIHW, depthwise as a grouped Conv),
// ZeroPadding2D, pooling. Keras 'same' padding is TensorFlow's asymmetric
// one (extra row/column at the end): ONNX's auto_pad SAME_UPPER.
#include <array>

#include "io/tfjs_emit.h"

namespace graft::tfjs {

namespace {

bool same_padding(const json& cfg) {
  std::string p = string_field(cfg, "padding", std::string("valid"));
  if (p == "same") return true;
  GRAFT_CHECK(p == "valid", kUnsupported, "padding '{}' is not supported (only valid and same)", p);
  return false;
}

// Output size of a window sliding over `in` (Keras/TensorFlow rules).
int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t dilation, bool same) {
  GRAFT_CHECK(k > 0 && stride > 0 && dilation > 0, kCorruption,
              "window sizes, strides and dilations must be positive");
  if (in < 0) return -1;
  if (same) return (in + stride - 1) / stride;
  int64_t extent = (k - 1) * dilation + 1;
  GRAFT_CHECK(in >= extent, kInvalidArgument, "input size {} is smaller than the window ({})", in,
              extent);
  return (in - extent) / stride + 1;
}

// out[i0..i3] = in[...] with out dimension j = in dimension perm[j].
Tensor permute4(const Tensor& t, const std::array<int, 4>& perm) {
  const Shape& s = t.shape();
  Shape os = {s[perm[0]], s[perm[1]], s[perm[2]], s[perm[3]]};
  Shape in_strides = {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
  Tensor out(DType::kF32, os);
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  int64_t o = 0;
  for (int64_t a = 0; a < os[0]; ++a)
    for (int64_t b = 0; b < os[1]; ++b)
      for (int64_t c = 0; c < os[2]; ++c)
        for (int64_t d = 0; d < os[3]; ++d)
          dst[o++] = src[a * in_strides[perm[0]] + b * in_strides[perm[1]] +
                         c * in_strides[perm[2]] + d * in_strides[perm[3]]];
  return out;
}

// Keras [kh, kw, in, out] -> ONNX [out, in, kh, kw].
Tensor hwio_to_oihw(const Tensor& k) { return permute4(k, {3, 2, 0, 1}); }

// Keras depthwise [kh, kw, C, mult] -> ONNX grouped [C*mult, 1, kh, kw]; output
// channel c*mult+m reads input channel c, as in TensorFlow.
Tensor depthwise_to_oihw(const Tensor& k) {
  Tensor t = permute4(k, {2, 3, 0, 1});
  return t.reshaped({k.dim(2) * k.dim(3), 1, k.dim(0), k.dim(1)});
}

struct Window {
  std::vector<int64_t> kernel, strides, dilations;
  bool same = false;
};

Window conv_window(const json& cfg, bool dilations_allowed_with_strides) {
  Window w;
  w.kernel = pair_field(cfg, "kernel_size");
  w.strides = pair_field(cfg, "strides", 1);
  w.dilations = pair_field(cfg, "dilation_rate", 1);
  w.same = same_padding(cfg);
  bool strided = w.strides[0] > 1 || w.strides[1] > 1;
  bool dilated = w.dilations[0] > 1 || w.dilations[1] > 1;
  GRAFT_CHECK(dilations_allowed_with_strides || !(strided && dilated), kUnsupported,
              "dilation_rate {}x{} together with strides {}x{} is not supported", w.dilations[0],
              w.dilations[1], w.strides[0], w.strides[1]);
  return w;
}

Attrs conv_attrs(const Window& w, int64_t group) {
  return {{"kernel_shape", ints(w.kernel)},
          {"strides", ints(w.strides)},
          {"dilations", ints(w.dilations)},
          {"group", group},
          {"auto_pad", std::string(w.same ? "SAME_UPPER" : "VALID")}};
}

Shape conv_out_shape(const KTensor& x, const Window& w, int64_t channels) {
  return {x.shape[0], window_out(x.shape[1], w.kernel[0], w.strides[0], w.dilations[0], w.same),
          window_out(x.shape[2], w.kernel[1], w.strides[1], w.dilations[1], w.same), channels};
}

}  // namespace

KTensor conv2d(const Emit& e) {
  expect_inputs(e, 1, 1);
  expect_rank(e.in(), 4);
  expect_channels_last(e.cfg);
  Window w = conv_window(e.cfg, false);
  int64_t filters = int_field(e.cfg, "filters");
  int64_t groups = int_field(e.cfg, "groups", 1);
  int64_t c = known_channels(e.in());
  GRAFT_CHECK(filters > 0 && groups > 0 && c % groups == 0 && filters % groups == 0, kCorruption,
              "filters {} and groups {} do not fit {} input channels", filters, groups, c);
  std::vector<std::string> inputs = {
      e.in().value,
      e.weight("kernel", {w.kernel[0], w.kernel[1], c / groups, filters}, hwio_to_oihw)};
  if (bool_field(e.cfg, "use_bias", true)) inputs.push_back(e.weight("bias", {filters}));
  std::string act = activation_of(e.cfg);
  std::string pre = e.node("Conv", inputs, pre_activation(e, act, "conv"), conv_attrs(w, groups));
  finish_activation(e, act, pre, 4);
  return {e.call.output, conv_out_shape(e.in(), w, filters)};
}

namespace {

// The depthwise half of DepthwiseConv2D and SeparableConv2D, writing `out`.
std::string depthwise(const Emit& e, const Window& w, int64_t mult, bool bias,
                      const std::string& out) {
  int64_t c = known_channels(e.in());
  GRAFT_CHECK(mult > 0, kCorruption, "depth_multiplier must be positive, got {}", mult);
  std::vector<std::string> inputs = {
      e.in().value,
      e.weight("depthwise_kernel", {w.kernel[0], w.kernel[1], c, mult}, depthwise_to_oihw)};
  if (bias) inputs.push_back(e.weight("bias", {c * mult}));
  return e.node("Conv", inputs, out, conv_attrs(w, c));
}

}  // namespace

KTensor depthwise_conv2d(const Emit& e) {
  expect_inputs(e, 1, 1);
  expect_rank(e.in(), 4);
  expect_channels_last(e.cfg);
  Window w = conv_window(e.cfg, false);
  int64_t mult = int_field(e.cfg, "depth_multiplier", 1);
  std::string act = activation_of(e.cfg);
  std::string pre =
      depthwise(e, w, mult, bool_field(e.cfg, "use_bias", true), pre_activation(e, act, "conv"));
  finish_activation(e, act, pre, 4);
  return {e.call.output, conv_out_shape(e.in(), w, known_channels(e.in()) * mult)};
}

KTensor separable_conv2d(const Emit& e) {
  expect_inputs(e, 1, 1);
  expect_rank(e.in(), 4);
  expect_channels_last(e.cfg);
  Window w = conv_window(e.cfg, false);
  int64_t mult = int_field(e.cfg, "depth_multiplier", 1);
  int64_t filters = int_field(e.cfg, "filters");
  int64_t mid = known_channels(e.in()) * mult;
  std::string dw = depthwise(e, w, mult, false, e.value("depthwise"));
  std::vector<std::string> inputs = {
      dw, e.weight("pointwise_kernel", {1, 1, mid, filters}, hwio_to_oihw)};
  if (bool_field(e.cfg, "use_bias", true)) inputs.push_back(e.weight("bias", {filters}));
  Window pw{{1, 1}, {1, 1}, {1, 1}, false};
  std::string act = activation_of(e.cfg);
  std::string pre = e.node("Conv", inputs, pre_activation(e, act, "pointwise"), conv_attrs(pw, 1));
  finish_activation(e, act, pre, 4);
  return {e.call.output, conv_out_shape(e.in(), w, filters)};
}

// --- padding and pooling ------------------------------------------------------------

KTensor zero_padding2d(const Emit& e) {
  expect_inputs(e, 1, 1);
  expect_rank(e.in(), 4);
  expect_channels_last(e.cfg);
  const json& p = member(e.cfg, "padding");
  int64_t top, bottom, left, right;
  if (p.is_array() && p.size() == 2 && p[0].is_array()) {
    std::vector<int64_t> h = as_int_list(p[0], "padding"), w = as_int_list(p[1], "padding");
    GRAFT_CHECK(h.size() == 2 && w.size() == 2, kCorruption, "padding must be [[t, b], [l, r]]");
    top = h[0], bottom = h[1], left = w[0], right = w[1];
  } else {
    std::vector<int64_t> hw = pair_field(e.cfg, "padding");
    top = bottom = hw[0];
    left = right = hw[1];
  }
  GRAFT_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, kCorruption,
              "padding must not be negative");
  Tensor pads = Tensor::from_vector<int64_t>({8}, {0, 0, top, left, 0, 0, bottom, right});
  e.node("Pad", {e.in().value, e.constant("pads", pads)}, e.call.output,
         {{"mode", std::string("constant")}});
  Shape s = e.in().shape;
  if (s[1] >= 0) s[1] += top + bottom;
  if (s[2] >= 0) s[2] += left + right;
  return {e.call.output, s};
}

KTensor pooling2d(const Emit& e, const std::string& op) {
  expect_inputs(e, 1, 1);
  expect_rank(e.in(), 4);
  expect_channels_last(e.cfg);
  Window w;
  w.kernel = pair_field(e.cfg, "pool_size", 2);
  w.strides = find_member(e.cfg, "strides") ? pair_field(e.cfg, "strides") : w.kernel;
  w.dilations = {1, 1};
  w.same = same_padding(e.cfg);
  // AveragePool's default count_include_pad=0 matches TensorFlow, which
  // averages over the window's part inside the input.
  e.node(op, {e.in().value}, e.call.output,
         {{"kernel_shape", ints(w.kernel)},
          {"strides", ints(w.strides)},
          {"auto_pad", std::string(w.same ? "SAME_UPPER" : "VALID")}});
  return {e.call.output, conv_out_shape(e.in(), w, e.in().shape[3])};
}

KTensor global_pooling2d(const Emit& e, const std::string& op) {
  expect_inputs(e, 1, 1);
  expect_rank(e.in(), 4);
  expect_channels_last(e.cfg);
  int64_t n = e.in().shape[0], c = e.in().shape[3];
  if (bool_field(e.cfg, "keepdims", false)) {
    e.node(op, {e.in().value}, e.call.output);
    return {e.call.output, {n, 1, 1, c}};
  }
  std::string pooled = e.node(op, {e.in().value}, e.value("pool"));
  e.node("Flatten", {pooled}, e.call.output, {{"axis", int64_t{1}}});
  return {e.call.output, {n, c}};
}

}  // namespace graft::tfjs
