#include "graft/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graft/loss.h"

namespace graft {

Evaluation evaluate_logits(const Tensor& logits, const std::vector<int64_t>& labels, int64_t k) {
  GRAFT_CHECK(logits.rank() == 2 && logits.dtype() == DType::kF32, kInvalidArgument,
              "logits must be float32 [N, C], got {}", shape_str(logits.shape()));
  const int64_t n = logits.dim(0), c = logits.dim(1);
  Evaluation e;
  e.samples = n;
  e.k = std::min(k, c);
  e.confusion.assign(c, std::vector<int64_t>(c, 0));
  e.per_class.resize(c);
  if (n == 0) return e;
  e.loss = softmax_cross_entropy(logits, labels).value;  // also checks the labels' range
  const float* z = logits.data<float>();
  int64_t correct = 0, correct_k = 0;
  std::vector<int64_t> order(c);
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * c;
    std::iota(order.begin(), order.end(), 0);
    // Ties go to the lower class index, as argmax does.
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return zi[a] > zi[b]; });
    int64_t y = labels[i];
    double sum = 0;
    for (int64_t k = 0; k < c; ++k) sum += std::exp(static_cast<double>(zi[k]) - zi[order[0]]);
    e.predictions.push_back(order[0]);
    e.confidences.push_back(1 / sum);
    e.confusion[y][order[0]]++;
    correct += order[0] == y;
    correct_k += std::find(order.begin(), order.begin() + e.k, y) != order.begin() + e.k;
  }
  e.accuracy = static_cast<double>(correct) / n;
  e.top_k_accuracy = static_cast<double>(correct_k) / n;
  for (int64_t cls = 0; cls < c; ++cls) {
    int64_t tp = e.confusion[cls][cls], actual = 0, predicted = 0;
    for (int64_t j = 0; j < c; ++j) {
      actual += e.confusion[cls][j];
      predicted += e.confusion[j][cls];
    }
    ClassMetrics& m = e.per_class[cls];
    m.support = actual;
    m.precision = predicted ? static_cast<double>(tp) / predicted : 0;
    m.recall = actual ? static_cast<double>(tp) / actual : 0;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
  }
  return e;
}

}  // namespace graft
