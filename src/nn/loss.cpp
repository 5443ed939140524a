#include "graft/loss.h"

#include <cmath>

namespace graft {

namespace {

void check_float_2d(const Tensor& t, const char* what) {
  GRAFT_CHECK(t.dtype() == DType::kF32, kInvalidArgument, "{} must be float32, got {}", what,
              dtype_name(t.dtype()));
  GRAFT_CHECK(t.rank() == 2, kInvalidArgument, "{} must be [batch, classes], got shape {}", what,
              shape_str(t.shape()));
}

}  // namespace

LossResult softmax_cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels,
                                 const CrossEntropyOptions& options) {
  check_float_2d(logits, "logits");
  const int64_t n = logits.dim(0), c = logits.dim(1);
  GRAFT_CHECK(static_cast<int64_t>(labels.size()) == n, kInvalidArgument,
              "{} labels for a batch of {}", labels.size(), n);
  GRAFT_CHECK(n > 0 && c > 0, kInvalidArgument, "empty batch");
  const float eps = options.label_smoothing;
  GRAFT_CHECK(eps >= 0 && eps < 1, kInvalidArgument, "label smoothing {} is not in [0, 1)", eps);
  std::vector<double> w(c, 1.0);
  if (!options.class_weights.empty()) {
    GRAFT_CHECK(static_cast<int64_t>(options.class_weights.size()) == c, kInvalidArgument,
                "{} class weights for {} classes", options.class_weights.size(), c);
    w.assign(options.class_weights.begin(), options.class_weights.end());
  }
  double w_sum = 0;  // sum over classes, for the smoothing term
  for (double x : w) w_sum += x;
  double norm = 0;   // PyTorch's weighted mean divides by the weights of the targets
  for (int64_t i = 0; i < n; ++i) {
    GRAFT_CHECK(labels[i] >= 0 && labels[i] < c, kInvalidArgument,
                "label {} of sample {} is out of range for {} classes", labels[i], i, c);
    norm += w[labels[i]];
  }
  GRAFT_CHECK(norm > 0, kInvalidArgument, "the class weights of this batch's labels sum to 0");

  LossResult r;
  r.grad = Tensor(DType::kF32, logits.shape());
  const float* z = logits.data<float>();
  float* g = r.grad.data<float>();
  double nll = 0, smooth = 0;
  std::vector<double> logp(c);
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * c;
    double mx = zi[0];
    for (int64_t k = 1; k < c; ++k) mx = std::max(mx, static_cast<double>(zi[k]));
    double sum = 0;
    for (int64_t k = 0; k < c; ++k) sum += std::exp(zi[k] - mx);
    double lse = mx + std::log(sum);
    for (int64_t k = 0; k < c; ++k) logp[k] = zi[k] - lse;
    int64_t y = labels[i];
    nll -= w[y] * logp[y];
    for (int64_t k = 0; k < c; ++k) smooth -= w[k] * logp[k];
    // d/dz_k of -w_y logp_y is -w_y (δ_yk - p_k); of -Σ_c w_c logp_c it is -(w_k - p_k Σ w).
    for (int64_t k = 0; k < c; ++k) {
      double p = std::exp(logp[k]);
      double d_nll = -w[y] * ((k == y) - p);
      double d_smooth = -(w[k] - p * w_sum);
      g[i * c + k] = static_cast<float>(((1 - eps) * d_nll + eps / c * d_smooth) / norm);
    }
  }
  r.value = ((1 - eps) * nll + eps / c * smooth) / norm;
  return r;
}

LossResult binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets) {
  check_float_2d(logits, "logits");
  GRAFT_CHECK(targets.shape() == logits.shape() && targets.dtype() == DType::kF32,
              kInvalidArgument, "targets must be float32 of the logits' shape {}, got {} {}",
              shape_str(logits.shape()), dtype_name(targets.dtype()), shape_str(targets.shape()));
  LossResult r;
  r.grad = Tensor(DType::kF32, logits.shape());
  const float* z = logits.data<float>();
  const float* t = targets.data<float>();
  float* g = r.grad.data<float>();
  const int64_t n = logits.numel();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    GRAFT_CHECK(t[i] >= 0 && t[i] <= 1, kInvalidArgument, "target {} at {} is not in [0, 1]", t[i], i);
    double x = z[i];
    // Stable form of -[t log σ(x) + (1-t) log(1-σ(x))].
    total += std::max(x, 0.0) - x * t[i] + std::log1p(std::exp(-std::abs(x)));
    double sig = 1 / (1 + std::exp(-x));
    g[i] = static_cast<float>((sig - t[i]) / n);
  }
  r.value = total / n;
  return r;
}

LossResult mean_squared_error(const Tensor& prediction, const Tensor& target) {
  GRAFT_CHECK(prediction.dtype() == DType::kF32 && target.dtype() == DType::kF32 &&
                  prediction.shape() == target.shape(),
              kInvalidArgument, "prediction {} and target {} must be float32 of one shape",
              shape_str(prediction.shape()), shape_str(target.shape()));
  LossResult r;
  r.grad = Tensor(DType::kF32, prediction.shape());
  const int64_t n = prediction.numel();
  GRAFT_CHECK(n > 0, kInvalidArgument, "empty prediction");
  const float* p = prediction.data<float>();
  const float* t = target.data<float>();
  float* g = r.grad.data<float>();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(p[i]) - t[i];
    total += d * d;
    g[i] = static_cast<float>(2 * d / n);
  }
  r.value = total / n;
  return r;
}

}  // namespace graft
