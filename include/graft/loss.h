// Losses computed from a model's raw outputs (logits), each returning its
// value and its gradient with respect to those outputs. Cross-entropy is
// computed with log-sum-exp from logits, never as the log of a probability.
#pragma once

#include <cstdint>
#include <vector>

#include "graft/tensor.h"

namespace graft {

struct LossResult {
  double value = 0;  // mean over the batch
  Tensor grad;       // d value / d input, the input's shape
};

struct CrossEntropyOptions {
  float label_smoothing = 0;        // in [0, 1): mixes in the uniform distribution
  std::vector<float> class_weights; // empty, or one weight per class
};

// Mean softmax cross-entropy of logits [N, C] (float32) against class indices
// (N of them), with PyTorch's semantics for label smoothing and class
// weights. A label outside [0, C) is a kInvalidArgument error naming the
// sample.
LossResult softmax_cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels,
                                 const CrossEntropyOptions& options = {});

// Mean binary cross-entropy with logits, for multi-label targets: logits and
// targets both [N, C], targets in [0, 1].
LossResult binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets);

// Mean squared error.
LossResult mean_squared_error(const Tensor& prediction, const Tensor& target);

}  // namespace graft
