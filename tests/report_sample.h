// The report data both report tests render: three classes (one named
// "<b>&" to check escaping), four epochs, three misclassified fixture images,
// comparisons, a cut table, settings, timings and a note.
#pragma once

#include <string>

#include "graft/report.h"

namespace graft::test {

inline std::string fixture(const std::string& name) {
  return std::string(GRAFT_TEST_DATA) + "/images/" + name;
}

inline ReportData sample_data() {
  ReportData d;
  d.title = "graft train: mobilenet_v2 on data/<demo>";
  d.settings = {{"model", "mobilenet_v2.onnx"}, {"cut", "pool & flatten"}, {"lr", "0.001"}};
  d.timings = {{"feature extraction", 12.5}, {"training", 3.25}};
  for (int e = 1; e <= 4; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.train_loss = 1.2 / e;
    r.train_accuracy = 0.5 + 0.1 * e;
    r.eval_loss = 1.0 / e + 0.1;
    r.eval_accuracy = 0.4 + 0.1 * e;
    d.history.push_back(r);
  }
  d.best_epoch = 3;
  d.eval_name = "validation";
  d.test.samples = 10;
  d.test.accuracy = 0.7;
  d.test.top_k_accuracy = 0.9;
  d.test.k = 2;
  d.test.confusion = {{3, 1, 0}, {0, 2, 1}, {1, 0, 2}};
  d.test.per_class = {
      {0.75, 0.75, 0.75, 4}, {2.0 / 3, 2.0 / 3, 2.0 / 3, 3}, {2.0 / 3, 2.0 / 3, 2.0 / 3, 3}};
  d.class_names = {"cat", "dog", "<b>&"};
  d.misclassified = {{fixture("rgb.png"), 0, 1, 0.61},
                     {fixture("rgb.jpg"), 1, 2, 0.875},
                     {fixture("rgba.png"), 2, 0, 0.5}};
  d.comparisons = {{"pretrained trunk", 0.82}, {"random trunk", 0.41}};
  d.cut_table = {{"block_15", 0.78}, {"block_16_project_BN", 0.84}, {"pool", 0.80}};
  d.notes = {"the validation set picked the best epoch"};
  return d;
}

}  // namespace graft::test
