// Classification metrics from predicted scores and true labels.
#pragma once

#include <cstdint>
#include <vector>

#include "graft/tensor.h"

namespace graft {

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // true samples of the class
};

struct Evaluation {
  int64_t samples = 0;
  double loss = 0;        // mean cross-entropy
  double accuracy = 0;    // top-1
  double top_k_accuracy = 0;
  int64_t k = 1;
  std::vector<int64_t> predictions;                  // top-1 class per sample
  std::vector<double> confidences;                   // its softmax probability
  std::vector<std::vector<int64_t>> confusion;       // [true][predicted] counts
  std::vector<ClassMetrics> per_class;
};

// Metrics of logits [N, C] against labels (N of them). k is clamped to C.
Evaluation evaluate_logits(const Tensor& logits, const std::vector<int64_t>& labels, int64_t k = 5);

}  // namespace graft
