// BatchNormalization in every opset's form.
//
// Inference form: y = (x - mean) / sqrt(var + epsilon) * scale + bias with
// the running statistics given as inputs. Before opset 14 a model's node
// runs this form unless graft itself trains it (as ONNX Runtime does; opset
// < 7 models exported for inference often leave is_test at its default), and
// the training-only outputs of those opsets are rejected.
//
// Training form (opset 14+ with training_mode=1, or at any opset when the
// executor trains the node: KernelContext::training): mean and biased
// variance over the batch and spatial axes normalise x, and the optional
// outputs carry the updated running statistics
// running * momentum + batch * (1 - momentum). ONNX's momentum 0.9 is
// PyTorch's 0.1.
//
// The running variance's batch term differs between the two callers. ONNX's
// reference (onnx/backend/test/case/node/batchnorm.py, np.var) and its
// conformance data use the biased batch variance; PyTorch normalises with
// the biased one but updates running_var with the unbiased one (times
// m / (m - 1), m values per channel). A node's own training_mode=1 follows
// ONNX; graft's training (c.training) follows PyTorch, so fine-tuning in
// graft matches fine-tuning in PyTorch.
#include <cmath>

#include "backend/backend.h"
#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

enum Input { kX = 0, kScale, kBias, kMean, kVar };

bool training_mode(const Node& node, int opset) {
  return opset >= 14 && node.attr_int("training_mode", 0) != 0;
}

// Whether the forward ran (or runs) the training form.
bool uses_batch_statistics(const Node& node, int opset, bool executor_training) {
  return executor_training || training_mode(node, opset);
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
  int64_t params() const { return per_activation ? channels * inner : channels; }
  // How many elements of x share one statistic.
  int64_t count() const { return per_activation ? batch : batch * inner; }
};

// Calls fn(flat index into x, statistic index) for every element of x.
template <typename Fn>
void for_each_element(const Layout& l, Fn&& fn) {
  for (int64_t n = 0; n < l.batch; ++n)
    for (int64_t c = 0; c < l.channels; ++c) {
      int64_t base = (n * l.channels + c) * l.inner;
      for (int64_t s = 0; s < l.inner; ++s) fn(base + s, l.param_index(c, s));
    }
}

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
  if (c.wants_output(1)) c.set_output(1, c.dtype(kMean), c.shape(kMean));
  if (c.wants_output(2)) c.set_output(2, c.dtype(kVar), c.shape(kVar));
}

// Mean and biased variance of each statistic's elements: per channel over
// the batch and spatial axes (or per activation over the batch).
template <typename T>
void batch_statistics(const T* x, const Layout& l, std::vector<double>& mean,
                      std::vector<double>& var) {
  mean.assign(l.params(), 0.0);
  var.assign(l.params(), 0.0);
  if (l.count() == 0) return;
  double count = static_cast<double>(l.count());
  for_each_element(l, [&](int64_t i, int64_t p) { mean[p] += x[i]; });
  for (double& m : mean) m /= count;
  // Two passes: the variance of the deviations, not E[x^2] - E[x]^2,
  // which cancels badly when the mean is large.
  for_each_element(l, [&](int64_t i, int64_t p) { var[p] += (x[i] - mean[p]) * (x[i] - mean[p]); });
  for (double& v : var) v /= count;
}

// PyTorch's running-variance term: the unbiased batch variance. With one
// value per statistic it is undefined (PyTorch refuses to train then);
// graft keeps the biased 0.
std::vector<double> unbiased(std::vector<double> var, int64_t count) {
  if (count < 2) return var;
  for (double& v : var) v *= static_cast<double>(count) / static_cast<double>(count - 1);
  return var;
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
  for_each_element(l, [&](int64_t i, int64_t p) { y[i] = static_cast<T>(x[i] * a[p] + b[p]); });
}

// Writes values into t in t's float dtype.
void store(Tensor& t, const std::vector<double>& values) {
  visit_float(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
}

// out = running * momentum + batch * (1 - momentum), in out's dtype.
void update_running(Tensor* out, const std::vector<double>& running,
                    const std::vector<double>& batch, double momentum) {
  if (!out) return;
  std::vector<double> next(running.size());
  for (size_t i = 0; i < running.size(); ++i)
    next[i] = running[i] * momentum + batch[i] * (1.0 - momentum);
  store(*out, next);
}

void compute_batch_norm(KernelContext& c) {
  const Tensor& x = c.in(kX);
  Layout l = layout_of(x.shape(), c.in(kScale).numel());
  std::vector<double> scale = c.in(kScale).to_vector<double>();
  std::vector<double> bias = c.in(kBias).to_vector<double>();
  std::vector<double> mean = c.in(kMean).to_vector<double>();
  std::vector<double> var = c.in(kVar).to_vector<double>();
  double epsilon = c.node.attr_float("epsilon", 1e-5f);
  bool training = uses_batch_statistics(c.node, c.opset, c.training);
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
    update_running(c.outputs.size() > 2 ? c.outputs[2] : nullptr, var,
                   c.training ? unbiased(batch_var, l.count()) : batch_var, momentum);
  });
}

// --- gradient -----------------------------------------------------------------

// Inference form: the statistics are constants, so y = x * a + b with
// a = scale / sqrt(var + epsilon) per statistic.
template <typename T>
void batch_norm_backward_inference(BackwardContext& c, const Layout& l, const T* x, const T* dy,
                                   double epsilon) {
  std::vector<double> scale = c.in(kScale).to_vector<double>();
  std::vector<double> mean = c.in(kMean).to_vector<double>();
  std::vector<double> var = c.in(kVar).to_vector<double>();
  std::vector<double> inv(l.params()), dscale(l.params(), 0.0), dbias(l.params(), 0.0);
  for (int64_t p = 0; p < l.params(); ++p) inv[p] = 1.0 / std::sqrt(var[p] + epsilon);
  T* dx = c.wants_grad(kX) ? c.grad_in(kX).data<T>() : nullptr;
  for_each_element(l, [&](int64_t i, int64_t p) {
    if (dx) dx[i] = static_cast<T>(dy[i] * scale[p] * inv[p]);
    dscale[p] += dy[i] * (x[i] - mean[p]) * inv[p];
    dbias[p] += dy[i];
  });
  if (c.wants_grad(kScale)) store(c.grad_in(kScale), dscale);
  if (c.wants_grad(kBias)) store(c.grad_in(kBias), dbias);
}

// Training form: mean and variance are functions of x. With
// xhat = (x - mean) / sqrt(var + epsilon) and m elements per statistic,
// dx = scale / sqrt(var + epsilon) * (dy - mean(dy) - xhat * mean(dy * xhat)).
// The running-statistics outputs, when a gradient reaches them, add
// (1 - momentum) * d(batch mean)/dx = (1 - momentum) / m and
// (1 - momentum) * k * d(batch var)/dx = (1 - momentum) * k * 2 (x - mean) / m,
// k = m / (m - 1) where the forward used the unbiased variance, else 1.
// Only x is read: the running-statistics inputs may already hold the
// executor's updated values.
template <typename T>
void batch_norm_backward_training(BackwardContext& c, const Layout& l, const T* x, const T* dy,
                                  double epsilon) {
  std::vector<double> scale = c.in(kScale).to_vector<double>();
  std::vector<double> mean, var;
  batch_statistics(x, l, mean, var);
  double m = static_cast<double>(l.count());
  std::vector<double> inv(l.params()), sum_dy(l.params(), 0.0), sum_dy_xhat(l.params(), 0.0);
  for (int64_t p = 0; p < l.params(); ++p) inv[p] = 1.0 / std::sqrt(var[p] + epsilon);
  auto xhat = [&](int64_t i, int64_t p) { return (x[i] - mean[p]) * inv[p]; };
  for_each_element(l, [&](int64_t i, int64_t p) {
    sum_dy[p] += dy[i];
    sum_dy_xhat[p] += dy[i] * xhat(i, p);
  });
  if (c.wants_grad(kScale)) store(c.grad_in(kScale), sum_dy_xhat);
  if (c.wants_grad(kBias)) store(c.grad_in(kBias), sum_dy);
  if (!c.wants_grad(kX)) return;
  double keep = 1.0 - c.node.attr_float("momentum", 0.9f);
  double k = c.training && l.count() > 1 ? m / (m - 1) : 1.0;
  std::vector<double> d_mean_out(l.params(), 0.0), d_var_out(l.params(), 0.0);
  if (c.has_grad_output(1)) d_mean_out = c.grad_out(1).to_vector<double>();
  if (c.has_grad_output(2)) d_var_out = c.grad_out(2).to_vector<double>();
  T* dx = c.grad_in(kX).data<T>();
  for_each_element(l, [&](int64_t i, int64_t p) {
    double through_y =
        scale[p] * inv[p] * (dy[i] - sum_dy[p] / m - xhat(i, p) * sum_dy_xhat[p] / m);
    double through_running = keep * (d_mean_out[p] + k * 2.0 * (x[i] - mean[p]) * d_var_out[p]) / m;
    dx[i] = static_cast<T>(through_y + through_running);
  });
}

void backward_batch_norm(BackwardContext& c) {
  const Tensor& x = c.in(kX);
  Layout l = layout_of(x.shape(), c.in(kScale).numel());
  double epsilon = c.node.attr_float("epsilon", 1e-5f);
  // No gradient reaching Y counts as a zero one.
  Tensor dy = c.has_grad_output(0) ? c.grad_out(0) : Tensor(x.dtype(), x.shape());
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (uses_batch_statistics(c.node, c.opset, c.training))
      batch_norm_backward_training(c, l, x.data<T>(), dy.data<T>(), epsilon);
    else
      batch_norm_backward_inference(c, l, x.data<T>(), dy.data<T>(), epsilon);
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
  d.fast_compute = [](KernelContext& c) {
    return backend::batch_norm_forward(c, uses_batch_statistics(c.node, c.opset, c.training));
  };
  d.fast_backward = [](BackwardContext& c) {
    return backend::batch_norm_backward(c, uses_batch_statistics(c.node, c.opset, c.training));
  };
  d.compute = compute_batch_norm;
  d.differentiable_inputs = {kX, kScale, kBias};  // not the running statistics
  d.backward = backward_batch_norm;
  r.add(std::move(d));
}

}  // namespace graft::ops
