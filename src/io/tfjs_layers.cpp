// Keras layers -> graft nodes (ONNX opset 13). Keras data is NHWC; rank-4
// values in the graph are NCHW, so channel axes are mapped, kernels are
// transposed to OIHW, and Flatten/Reshape/Dense of a rank-4 tensor go back to
// NHWC first so that the flattened order (and Dense weights) match Keras.
#include <algorithm>
#include <numeric>

#include "io/tfjs_emit.h"

namespace graft::tfjs {

std::string keras_shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + (s[i] < 0 ? std::string("None") : std::to_string(s[i]));
  return out + "]";
}

void expect_inputs(const Emit& e, size_t min, size_t max) {
  size_t n = e.call.inputs.size();
  if (min == max)
    GRAFT_CHECK(n == min, kCorruption, "takes {} input(s), the model gives it {}", min, n);
  GRAFT_CHECK(n >= min && n <= max, kCorruption, "takes {} to {} inputs, the model gives it {}",
              min, max, n);
}

void expect_rank(const KTensor& t, int rank) {
  GRAFT_CHECK(t.rank() == rank, kUnsupported, "needs a rank-{} input, got shape {}", rank,
              keras_shape_str(t.shape));
}

void expect_channels_last(const json& cfg) {
  std::string f = string_field(cfg, "data_format", std::string("channels_last"));
  GRAFT_CHECK(f == "channels_last", kUnsupported,
              "data_format '{}' is not supported (only channels_last)", f);
}

int64_t known_channels(const KTensor& t) {
  int64_t c = t.shape.back();
  GRAFT_CHECK(c > 0, kUnsupported, "needs a known channel count, input shape is {}",
              keras_shape_str(t.shape));
  return c;
}

Tensor scalar_f32(double v) { return Tensor::scalar<float>(static_cast<float>(v)); }

// --- activations --------------------------------------------------------------

namespace {

// "hard_sigmoid" and TF.js' "hardSigmoid" alike: lower case, no underscores.
std::string canonical_activation(std::string name) {
  std::string out;
  for (char ch : name)
    if (ch != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out == "silu" ? "swish" : out;
}

bool is_linear(const std::string& act) { return act == "linear"; }

}  // namespace

std::string activation_of(const json& cfg) {
  const json* a = find_member(cfg, "activation");
  if (!a) return "linear";
  GRAFT_CHECK(a->is_string(), kUnsupported, "activation {} is not supported (only a name)",
              a->dump());
  return canonical_activation(a->get<std::string>());
}

void emit_activation(const Emit& e, const std::string& act, const std::string& x,
                     const std::string& out, int rank) {
  if (act == "linear") {
    e.node("Identity", {x}, out);
  } else if (act == "relu") {
    e.node("Relu", {x}, out);
  } else if (act == "relu6") {
    e.node("Clip", {x, e.constant("zero", scalar_f32(0)), e.constant("six", scalar_f32(6))}, out);
  } else if (act == "sigmoid") {
    e.node("Sigmoid", {x}, out);
  } else if (act == "tanh") {
    e.node("Tanh", {x}, out);
  } else if (act == "softmax") {
    e.node("Softmax", {x}, out, {{"axis", int64_t{graph_axis(-1, rank)}}});
  } else if (act == "swish") {
    std::string s = e.node("Sigmoid", {x}, e.value("sigmoid"));
    e.node("Mul", {x, s}, out);
  } else if (act == "hardsigmoid") {
    // Keras 2 and TF.js: clip(0.2 x + 0.5, 0, 1).
    e.node("HardSigmoid", {x}, out, {{"alpha", 0.2f}, {"beta", 0.5f}});
  } else {
    fail(ErrorKind::kUnsupported,
         "activation '{}' is not supported (supported: linear, relu, relu6, sigmoid, tanh, "
         "softmax, swish, hard_sigmoid)",
         act);
  }
}

std::string pre_activation(const Emit& e, const std::string& act, const std::string& suffix) {
  return is_linear(act) ? e.call.output : e.value(suffix);
}

void finish_activation(const Emit& e, const std::string& act, const std::string& pre, int rank) {
  if (!is_linear(act)) emit_activation(e, act, pre, e.call.output, rank);
}

namespace {

// A rank-4 graph value (NCHW) in Keras' NHWC order; other ranks as they are.
std::string to_keras_order(const Emit& e, const KTensor& x) {
  if (x.rank() != 4) return x.value;
  return e.node("Transpose", {x.value}, e.value("nhwc"), {{"perm", ints({0, 2, 3, 1})}});
}

// --- normalisation and activations as layers -------------------------------------

KTensor batch_normalization(const Emit& e) {
  expect_inputs(e, 1, 1);
  const KTensor& x = e.in();
  const json& axis_json = member(e.cfg, "axis");
  std::vector<int64_t> axes = axis_json.is_array()
                                  ? as_int_list(axis_json, "axis")
                                  : std::vector<int64_t>{as_int(axis_json, "axis")};
  GRAFT_CHECK(axes.size() == 1, kUnsupported, "normalising over {} axes is not supported",
              axes.size());
  GRAFT_CHECK(x.rank() >= 2 && graph_axis(axes[0], x.rank()) == 1, kUnsupported,
              "axis {} of a {} input is not supported (only the channel axis)", axes[0],
              keras_shape_str(x.shape));
  int64_t c = x.shape[axes[0] < 0 ? axes[0] + x.rank() : axes[0]];
  GRAFT_CHECK(c > 0, kUnsupported, "needs a known channel count, input shape is {}",
              keras_shape_str(x.shape));
  Tensor ones(DType::kF32, {c}), zeros(DType::kF32, {c});
  std::fill(ones.data<float>(), ones.data<float>() + c, 1.0f);
  std::string gamma =
      bool_field(e.cfg, "scale", true) ? e.weight("gamma", {c}) : e.constant("gamma", ones);
  std::string beta =
      bool_field(e.cfg, "center", true) ? e.weight("beta", {c}) : e.constant("beta", zeros);
  std::string mean = e.weight("moving_mean", {c});
  std::string var = e.weight("moving_variance", {c});
  float eps = static_cast<float>(number_field(e.cfg, "epsilon", 1e-3));
  // ONNX's momentum weighs the running statistics as Keras' does.
  float momentum = static_cast<float>(number_field(e.cfg, "momentum", 0.99));
  e.node("BatchNormalization", {x.value, gamma, beta, mean, var}, e.call.output,
         {{"epsilon", eps}, {"momentum", momentum}});
  return {e.call.output, x.shape};
}

// Keras' ReLU with a threshold t: x * (x > t), clipped to [0, max_value]
// when one is given, minus slope * relu(t - x). The step x > t is
// Cast(Cast(Relu(x - t), bool), float): for floats x - t > 0 exactly when x > t.
void thresholded_relu(const Emit& e, double threshold, double slope, const json* max_json) {
  const std::string& x = e.in().value;
  std::string t = e.constant("threshold", scalar_f32(threshold));
  std::string above = e.node("Relu", {e.node("Sub", {x, t}, e.value("shifted"))}, e.value("above"));
  std::string step =
      e.node("Cast", {e.node("Cast", {above}, e.value("step_bool"), {{"to", int64_t{9}}})},  // BOOL
             e.value("step"), {{"to", int64_t{1}}});  // FLOAT
  bool last = !max_json && slope == 0;
  std::string pos = e.node("Mul", {x, step}, last ? e.call.output : e.value("kept"));
  if (max_json)
    pos = e.node("Clip",
                 {pos, e.constant("min", scalar_f32(0)),
                  e.constant("max", scalar_f32(max_json->get<double>()))},
                 slope == 0 ? e.call.output : e.value("clipped"));
  if (slope == 0) return;
  std::string below =
      e.node("Relu", {e.node("Sub", {t, x}, e.value("below"))}, e.value("below_relu"));
  std::string neg =
      e.node("Mul", {below, e.constant("slope", scalar_f32(slope))}, e.value("negative"));
  e.node("Sub", {pos, neg}, e.call.output);
}

KTensor relu_layer(const Emit& e) {
  expect_inputs(e, 1, 1);
  const KTensor& x = e.in();
  const json* max_json = find_member(e.cfg, "max_value");
  double slope = number_field(e.cfg, "negative_slope", 0.0);
  double threshold = number_field(e.cfg, "threshold", 0.0);
  GRAFT_CHECK(slope >= 0, kCorruption, "negative_slope must not be negative, got {}", slope);
  if (max_json) {
    GRAFT_CHECK(max_json->is_number(), kCorruption, "max_value must be a number");
    GRAFT_CHECK(max_json->get<double>() >= 0, kCorruption, "max_value must not be negative");
  }
  if (threshold != 0) {
    thresholded_relu(e, threshold, slope, max_json);
  } else if (slope == 0 && !max_json) {
    e.node("Relu", {x.value}, e.call.output);
  } else if (slope == 0) {
    e.node("Clip",
           {x.value, e.constant("min", scalar_f32(0)),
            e.constant("max", scalar_f32(max_json->get<double>()))},
           e.call.output);
  } else {
    // Keras: max(x, 0) capped at max_value, plus slope * min(x, 0) uncapped.
    std::string leaky = e.node("LeakyRelu", {x.value}, max_json ? e.value("leaky") : e.call.output,
                               {{"alpha", static_cast<float>(slope)}});
    if (max_json)
      e.node("Clip", {leaky, "", e.constant("max", scalar_f32(max_json->get<double>()))},
             e.call.output);
  }
  return {e.call.output, x.shape};
}

KTensor leaky_relu_layer(const Emit& e) {
  expect_inputs(e, 1, 1);
  float alpha = static_cast<float>(number_field(e.cfg, "alpha", 0.3));
  e.node("LeakyRelu", {e.in().value}, e.call.output, {{"alpha", alpha}});
  return {e.call.output, e.in().shape};
}

KTensor softmax_layer(const Emit& e) {
  expect_inputs(e, 1, 1);
  const json* axis = find_member(e.cfg, "axis");
  int64_t a = -1;
  if (axis) {
    std::vector<int64_t> axes =
        axis->is_array() ? as_int_list(*axis, "axis") : std::vector<int64_t>{as_int(*axis, "axis")};
    GRAFT_CHECK(axes.size() == 1, kUnsupported, "softmax over {} axes is not supported",
                axes.size());
    a = axes[0];
  }
  e.node("Softmax", {e.in().value}, e.call.output, {{"axis", graph_axis(a, e.in().rank())}});
  return {e.call.output, e.in().shape};
}

KTensor activation_layer(const Emit& e) {
  expect_inputs(e, 1, 1);
  emit_activation(e, activation_of(e.cfg), e.in().value, e.call.output, e.in().rank());
  return {e.call.output, e.in().shape};
}

KTensor dropout(const Emit& e) {
  expect_inputs(e, 1, 1);
  double rate = number_field(e.cfg, "rate");
  GRAFT_CHECK(rate >= 0 && rate < 1, kCorruption, "rate must be in [0, 1), got {}", rate);
  e.node("Dropout", {e.in().value, e.constant("ratio", scalar_f32(rate))}, e.call.output);
  return {e.call.output, e.in().shape};
}

KTensor rescaling(const Emit& e) {
  expect_inputs(e, 1, 1);
  const json& scale_json = member(e.cfg, "scale");
  GRAFT_CHECK(scale_json.is_number(), kUnsupported,
              "a per-channel scale is not supported (only one number)");
  double scale = scale_json.get<double>();
  double offset = number_field(e.cfg, "offset", 0.0);
  std::string x = e.in().value;
  if (offset != 0) {
    std::string scaled = e.node("Mul", {x, e.constant("scale", scalar_f32(scale))}, e.value("mul"));
    e.node("Add", {scaled, e.constant("offset", scalar_f32(offset))}, e.call.output);
  } else {
    e.node("Mul", {x, e.constant("scale", scalar_f32(scale))}, e.call.output);
  }
  return {e.call.output, e.in().shape};
}

// --- merging ----------------------------------------------------------------------

// Keras' broadcasting of equal-rank inputs: sizes equal, 1 or unknown.
Shape merged_shape(const std::vector<KTensor>& ins) {
  Shape out = ins[0].shape;
  for (const KTensor& t : ins) {
    GRAFT_CHECK(t.rank() == ins[0].rank(), kUnsupported,
                "inputs of different ranks ({} and {}) are not supported",
                keras_shape_str(ins[0].shape), keras_shape_str(t.shape));
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t a = out[i], b = t.shape[i];
      GRAFT_CHECK(a == b || a == 1 || b == 1 || a < 0 || b < 0, kCorruption,
                  "inputs have incompatible shapes {} and {}", keras_shape_str(ins[0].shape),
                  keras_shape_str(t.shape));
      out[i] = a == 1 ? b : (b == 1 ? a : std::max(a, b));
    }
  }
  return out;
}

KTensor merge(const Emit& e, const std::string& op) {
  expect_inputs(e, 2, 1000);
  Shape shape = merged_shape(e.call.inputs);
  std::string acc = e.in(0).value;
  size_t n = e.call.inputs.size();
  for (size_t i = 1; i < n; ++i) {
    std::string out = i + 1 == n ? e.call.output : e.value(fmt::format("partial{}", i));
    acc = e.node(op, {acc, e.in(i).value}, out);
  }
  return {e.call.output, shape};
}

KTensor concatenate(const Emit& e) {
  expect_inputs(e, 1, 1000);
  int rank = e.in().rank();
  int64_t axis = int_field(e.cfg, "axis", -1);
  GRAFT_CHECK(axis >= -rank && axis < rank && rank > 0, kCorruption,
              "axis {} is out of range for rank {}", axis, rank);
  int64_t k = axis < 0 ? axis + rank : axis;
  Shape shape = e.in().shape;
  shape[k] = 0;
  std::vector<std::string> values;
  for (const KTensor& t : e.call.inputs) {
    GRAFT_CHECK(t.rank() == rank, kCorruption, "inputs {} and {} differ in rank",
                keras_shape_str(e.in().shape), keras_shape_str(t.shape));
    for (int i = 0; i < rank; ++i)
      GRAFT_CHECK(i == k || t.shape[i] == shape[i] || t.shape[i] < 0 || shape[i] < 0, kCorruption,
                  "inputs {} and {} differ outside axis {}", keras_shape_str(e.in().shape),
                  keras_shape_str(t.shape), axis);
    shape[k] = (shape[k] < 0 || t.shape[k] < 0) ? -1 : shape[k] + t.shape[k];
    values.push_back(t.value);
  }
  e.node("Concat", values, e.call.output, {{"axis", graph_axis(axis, rank)}});
  return {e.call.output, shape};
}

// --- reshaping and dense ---------------------------------------------------------------

int64_t known_product(const Shape& s, size_t from) {
  int64_t p = 1;
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] < 0) return -1;
    p *= s[i];
  }
  return p;
}

KTensor flatten(const Emit& e) {
  expect_inputs(e, 1, 1);
  const KTensor& x = e.in();
  GRAFT_CHECK(x.rank() >= 2, kCorruption, "needs an input of rank 2 or more, got {}",
              keras_shape_str(x.shape));
  // With a 1x1 image NCHW and NHWC flatten alike, so no transpose is needed.
  bool one_by_one = x.rank() == 4 && x.shape[1] == 1 && x.shape[2] == 1;
  std::string v = one_by_one ? x.value : to_keras_order(e, x);
  e.node("Flatten", {v}, e.call.output, {{"axis", int64_t{1}}});
  return {e.call.output, {x.shape[0], known_product(x.shape, 1)}};
}

KTensor reshape(const Emit& e) {
  expect_inputs(e, 1, 1);
  const KTensor& x = e.in();
  std::vector<int64_t> target = as_int_list(member(e.cfg, "target_shape"), "target_shape");
  int64_t total = known_product(x.shape, 1), known = 1;
  int unknown = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    GRAFT_CHECK(target[i] > 0 || (target[i] == -1 && unknown < 0), kCorruption,
                "target_shape {} is invalid", keras_shape_str(target));
    if (target[i] == -1) unknown = static_cast<int>(i);
    else known *= target[i];
  }
  Shape out = {x.shape[0]};
  for (int64_t d : target) out.push_back(d);
  if (total >= 0) {
    GRAFT_CHECK(unknown >= 0 ? total % known == 0 : total == known, kCorruption,
                "cannot reshape {} to target_shape {}", keras_shape_str(x.shape),
                keras_shape_str(target));
    if (unknown >= 0) out[unknown + 1] = total / known;
  }
  std::vector<int64_t> spec = {0};  // 0: keep the batch size
  spec.insert(spec.end(), target.begin(), target.end());
  Tensor shape_t = Tensor::from_vector<int64_t>({static_cast<int64_t>(spec.size())}, spec);
  std::string v = to_keras_order(e, x);
  std::string shape_c = e.constant("shape", shape_t);
  if (out.size() == 4) {
    std::string r = e.node("Reshape", {v, shape_c}, e.value("reshape"));
    e.node("Transpose", {r}, e.call.output, {{"perm", ints({0, 3, 1, 2})}});
  } else {
    e.node("Reshape", {v, shape_c}, e.call.output);
  }
  return {e.call.output, out};
}

KTensor dense(const Emit& e) {
  expect_inputs(e, 1, 1);
  const KTensor& x = e.in();
  GRAFT_CHECK(x.rank() >= 2, kCorruption, "needs an input of rank 2 or more, got {}",
              keras_shape_str(x.shape));
  int64_t units = int_field(e.cfg, "units");
  int64_t in = known_channels(x);
  std::string kernel = e.weight("kernel", {in, units});
  bool use_bias = bool_field(e.cfg, "use_bias", true);
  std::string bias = use_bias ? e.weight("bias", {units}) : "";
  std::string act = activation_of(e.cfg);
  Shape out_shape = x.shape;
  out_shape.back() = units;
  if (x.rank() == 2) {
    std::vector<std::string> inputs = {x.value, kernel};
    if (use_bias) inputs.push_back(bias);
    std::string pre = e.node("Gemm", inputs, pre_activation(e, act, "gemm"));
    finish_activation(e, act, pre, 2);
    return {e.call.output, out_shape};
  }
  // Keras applies the kernel to the last axis: MatMul in Keras order.
  bool image = x.rank() == 4;
  std::string v = to_keras_order(e, x);
  bool last_is_pre = !image && !use_bias;
  std::string y = e.node("MatMul", {v, kernel},
                         last_is_pre ? pre_activation(e, act, "matmul") : e.value("matmul"));
  if (use_bias)
    y = e.node("Add", {y, bias}, !image ? pre_activation(e, act, "add") : e.value("add"));
  if (image)
    y = e.node("Transpose", {y}, pre_activation(e, act, "nchw"), {{"perm", ints({0, 3, 1, 2})}});
  finish_activation(e, act, y, x.rank());
  return {e.call.output, out_shape};
}

using LayerFn = std::function<KTensor(const Emit&)>;

const std::map<std::string, LayerFn>& layer_table() {
  static const std::map<std::string, LayerFn> table = {
      {"Conv2D", conv2d},
      {"DepthwiseConv2D", depthwise_conv2d},
      {"SeparableConv2D", separable_conv2d},
      {"BatchNormalization", batch_normalization},
      {"ReLU", relu_layer},
      {"LeakyReLU", leaky_relu_layer},
      {"Softmax", softmax_layer},
      {"Activation", activation_layer},
      {"Dropout", dropout},
      {"Rescaling", rescaling},
      {"Add", [](const Emit& e) { return merge(e, "Add"); }},
      {"Multiply", [](const Emit& e) { return merge(e, "Mul"); }},
      {"Concatenate", concatenate},
      {"ZeroPadding2D", zero_padding2d},
      {"AveragePooling2D", [](const Emit& e) { return pooling2d(e, "AveragePool"); }},
      {"MaxPooling2D", [](const Emit& e) { return pooling2d(e, "MaxPool"); }},
      {"GlobalAveragePooling2D",
       [](const Emit& e) { return global_pooling2d(e, "GlobalAveragePool"); }},
      {"GlobalMaxPooling2D", [](const Emit& e) { return global_pooling2d(e, "GlobalMaxPool"); }},
      {"Flatten", flatten},
      {"Reshape", reshape},
      {"Dense", dense},
  };
  return table;
}

}  // namespace

int64_t graph_axis(int64_t keras_axis, int rank) {
  GRAFT_CHECK(keras_axis >= -rank && keras_axis < rank, kCorruption,
              "axis {} is out of range for rank {}", keras_axis, rank);
  int64_t a = keras_axis < 0 ? keras_axis + rank : keras_axis;
  if (rank != 4) return a;
  static const int64_t kNhwcToNchw[] = {0, 2, 3, 1};
  return kNhwcToNchw[a];
}

KTensor emit_layer(GraphBuilder& b, const LayerCall& call) {
  const auto& table = layer_table();
  auto it = table.find(call.class_name);
  if (it == table.end()) {
    std::string known;
    for (const auto& kv : table) known += (known.empty() ? "" : ", ") + kv.first;
    fail(ErrorKind::kUnsupported, "layer class '{}' is not supported (supported: {})",
         call.class_name, known);
  }
  return it->second(Emit{b, call, *call.config});
}

}  // namespace graft::tfjs
