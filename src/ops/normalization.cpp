// BatchNormalization in every opset's form.
//
// Inference form: y = (x - mean) / sqrt(var + epsilon) * scale + bias with
// the running statistics given as inputs. Before opset 14 graft always runs
// this form (as ONNX Runtime does; opset < 7 models exported for inference
// often leave is_test at its default), and rejects the training-only
// outputs of those opsets.
//
// Training form (opset 14+, training_mode=1): mean and biased variance over
// the batch and spatial axes normalise x, and the optional outputs carry the
// updated running statistics running * momentum + batch * (1 - momentum).
#include <cmath>

#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

enum Input { kX = 0, kScale, kBias, kMean, kVar };

bool training_mode(const Node& node, int opset) {
  return opset >= 14 && node.attr_int("training_mode", 0) != 0;
}

int extra_outputs(const Node& node) {
  int n = 0;
  for (size_t i = 1; i < node.outputs.size(); ++i) n += node.outputs[i].empty() ? 0 : 1;
  return n;
}

void check_batch_norm(const Node& node, int opset) {
  int64_t mode = node.attr_int("training_mode", 0);
  GRAFT_CHECK(mode == 0 || mode == 1, kUnsupported, "training_mode {} is not supported (0 or 1)",
              mode);
  int64_t spatial = node.attr_int("spatial", 1);
  GRAFT_CHECK(spatial == 0 || spatial == 1, kUnsupported, "spatial {} is not supported (0 or 1)",
              spatial);
  if (opset < 14) {
    GRAFT_CHECK(extra_outputs(node) == 0, kUnsupported,
                "the training outputs (mean, var, saved_mean, saved_var) of opset {} are not "
                "supported; graft runs BatchNormalization before opset 14 in inference form",
                opset);
    return;
  }
  GRAFT_CHECK(node.outputs.size() <= 3, kCorruption, "has {} outputs; opset {} gives at most 3",
              node.outputs.size(), opset);
  GRAFT_CHECK(mode == 1 || extra_outputs(node) == 0, kCorruption,
              "outputs running_mean and running_var are only given when training_mode=1");
}

// How x's elements map onto the statistics: per channel (spatial=1, the
// usual case) or, for opset < 9 with spatial=0, per activation (one value
// for each channel and spatial position).
struct Layout {
  int64_t batch = 0, channels = 0, inner = 0;  // x is batch x channels x inner
  bool per_activation = false;
  int64_t param_index(int64_t c, int64_t s) const { return per_activation ? c * inner + s : c; }
};

Layout layout_of(const Shape& x, int64_t param_numel) {
  Layout l;
  l.batch = x[0];
  l.channels = x[1];
  l.inner = 1;
  for (size_t i = 2; i < x.size(); ++i) l.inner *= x[i];
  l.per_activation = param_numel != l.channels;
  return l;
}

const char* const kInputNames[] = {"X", "scale", "B", "mean", "var"};

void infer_batch_norm(InferContext& c) {
  c.require_dtype(kX, {DType::kF32, DType::kF64});
  const Shape& x = c.shape(kX);
  c.check(x.size() >= 2, "input has shape {}; BatchNormalization needs N x C x ...", shape_str(x));
  Layout l = layout_of(x, x[1]);
  bool spatial = c.node.attr_int("spatial", 1) != 0 || c.opset >= 9;
  for (int i = kScale; i <= kVar; ++i) {
    c.require_dtype(i, {DType::kF32, DType::kF64});
    bool per_channel = c.shape(i) == Shape{l.channels};
    bool per_activation = !spatial && shape_numel(c.shape(i)) == l.channels * l.inner;
    c.check(per_channel || per_activation, "{} has shape {}; {} channels need {}", kInputNames[i],
            shape_str(c.shape(i)), l.channels,
            spatial ? std::to_string(l.channels)
                    : fmt::format("{} or {}x{}", l.channels, l.channels, l.inner));
    c.check(shape_numel(c.shape(i)) == shape_numel(c.shape(kScale)),
            "{} has shape {} but scale has shape {}", kInputNames[i], shape_str(c.shape(i)),
            shape_str(c.shape(kScale)));
  }
  c.set_output(0, c.dtype(kX), x);
  if (c.wants_output(1)) c.set_output(1, c.dtype(kMean), {l.channels});
  if (c.wants_output(2)) c.set_output(2, c.dtype(kVar), {l.channels});
}

// Per-channel mean and biased variance over the batch and spatial axes.
template <typename T>
void batch_statistics(const T* x, const Layout& l, std::vector<double>& mean,
                      std::vector<double>& var) {
  double count = static_cast<double>(l.batch * l.inner);
  mean.assign(l.channels, 0.0);
  var.assign(l.channels, 0.0);
  if (count == 0) return;
  for (int64_t c = 0; c < l.channels; ++c) {
    double sum = 0, squares = 0;
    for (int64_t n = 0; n < l.batch; ++n) {
      const T* xp = x + (n * l.channels + c) * l.inner;
      for (int64_t s = 0; s < l.inner; ++s) sum += xp[s];
    }
    mean[c] = sum / count;
    // Two passes: the variance of the deviations, not E[x^2] - E[x]^2,
    // which cancels badly when the mean is large.
    for (int64_t n = 0; n < l.batch; ++n) {
      const T* xp = x + (n * l.channels + c) * l.inner;
      for (int64_t s = 0; s < l.inner; ++s) squares += (xp[s] - mean[c]) * (xp[s] - mean[c]);
    }
    var[c] = squares / count;
  }
}

// y = (x - mean) / sqrt(var + epsilon) * scale + bias, folded into y = x * a + b.
template <typename T>
void normalize(const T* x, T* y, const Layout& l, const std::vector<double>& mean,
               const std::vector<double>& var, const std::vector<double>& scale,
               const std::vector<double>& bias, double epsilon) {
  std::vector<double> a(mean.size()), b(mean.size());
  for (size_t p = 0; p < mean.size(); ++p) {
    a[p] = scale[p] / std::sqrt(var[p] + epsilon);
    b[p] = bias[p] - mean[p] * a[p];
  }
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = 0; c < l.channels; ++c) {
      int64_t base = (n * l.channels + c) * l.inner;
      for (int64_t s = 0; s < l.inner; ++s) {
        int64_t p = l.param_index(c, s);
        y[base + s] = static_cast<T>(x[base + s] * a[p] + b[p]);
      }
    }
}

// out = running * momentum + batch * (1 - momentum), in out's dtype.
void update_running(Tensor* out, const std::vector<double>& running,
                    const std::vector<double>& batch, double momentum) {
  if (!out) return;
  visit_float(out->dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = out->data<T>();
    for (size_t i = 0; i < running.size(); ++i)
      p[i] = static_cast<T>(running[i] * momentum + batch[i] * (1.0 - momentum));
  });
}

void compute_batch_norm(KernelContext& c) {
  const Tensor& x = c.in(kX);
  Layout l = layout_of(x.shape(), c.in(kScale).numel());
  std::vector<double> scale = c.in(kScale).to_vector<double>();
  std::vector<double> bias = c.in(kBias).to_vector<double>();
  std::vector<double> mean = c.in(kMean).to_vector<double>();
  std::vector<double> var = c.in(kVar).to_vector<double>();
  double epsilon = c.node.attr_float("epsilon", 1e-5f);
  bool training = training_mode(c.node, c.opset);
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (!training) {
      normalize(x.data<T>(), c.out(0).data<T>(), l, mean, var, scale, bias, epsilon);
      return;
    }
    std::vector<double> batch_mean, batch_var;
    batch_statistics(x.data<T>(), l, batch_mean, batch_var);
    normalize(x.data<T>(), c.out(0).data<T>(), l, batch_mean, batch_var, scale, bias, epsilon);
    double momentum = c.node.attr_float("momentum", 0.9f);
    update_running(c.outputs.size() > 1 ? c.outputs[1] : nullptr, mean, batch_mean, momentum);
    update_running(c.outputs.size() > 2 ? c.outputs[2] : nullptr, var, batch_var, momentum);
  });
}

}  // namespace

void register_normalization_ops(OpRegistry& r) {
  OpDef d;
  d.type = "BatchNormalization";
  d.min_inputs = d.max_inputs = 5;
  d.max_outputs = 5;  // opset < 14: Y, mean, var, saved_mean, saved_var
  d.attributes = {"epsilon", "momentum", "is_test", "spatial", "consumed_inputs", "training_mode"};
  d.check = check_batch_norm;
  d.infer = infer_batch_norm;
  d.compute = compute_batch_norm;
  r.add(std::move(d));
}

}  // namespace graft::ops
