// report.html: what a training run did, in one self-contained HTML file that
// opens in any browser without a network (inline CSS, inline SVG charts,
// thumbnails as data: URIs; no scripts, no fonts, no links out).
//
// Sections: a summary (test accuracy, top-k, best epoch, total time), loss
// and accuracy curves per epoch with the best epoch marked, the confusion
// matrix, per-class precision/recall/F1/support, comparisons and the cut
// search table when given, the notes, the settings and timings, and
// thumbnails of the misclassified test images. Every string from the data
// is HTML-escaped. The same data always gives the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graft/fit.h"
#include "graft/image.h"
#include "graft/metrics.h"

namespace graft {

struct ReportImage {
  std::string path;                  // the image file; its thumbnail is made from it
  int64_t truth = 0, predicted = 0;  // class indices
  double confidence = 0;             // the predicted class's probability, 0..1
};

struct ReportData {
  std::string title;  // e.g. "graft train: mobilenet_v2 on data/demo"
  std::vector<std::pair<std::string, std::string>> settings;  // name, value
  // Name, seconds. The total shown is the entry named "total" if there is
  // one, else the sum of all entries.
  std::vector<std::pair<std::string, double>> timings;
  std::vector<EpochRecord> history;
  int64_t best_epoch = 0;                // 1-based; 0: none
  std::string eval_name = "test";        // what eval_accuracy measured ("validation" or "test")
  Evaluation test;                       // samples == 0: no test evaluation
  std::vector<std::string> class_names;  // missing names show as "class N"
  std::vector<ReportImage> misclassified;
  Preprocess thumbnail_preprocess;  // its background and pixel limit decode the thumbnails
  // Accuracies (0..1) shown side by side, e.g. {"pretrained trunk", 0.82}.
  std::vector<std::pair<std::string, double>> comparisons;
  // Cut search: cut name, validation accuracy (0..1); empty: no table.
  std::vector<std::pair<std::string, double>> cut_table;
  std::vector<std::string> notes;  // free lines
};

// Thumbnails are at most this many pixels on a side, aspect kept.
inline constexpr int kReportThumbnailSize = 96;
// Misclassified images beyond this many are listed as text, without a
// thumbnail, so that a large test set does not make a huge file.
inline constexpr int kReportMaxThumbnails = 200;

// The whole HTML document. Never throws for an image that cannot be read or
// decoded: its place shows the path and the error.
std::string render_report(const ReportData& data);

// render_report written atomically to `path` (kIO naming the file on failure).
void write_report(const std::string& path, const ReportData& data);

// Exposed for tests and other writers.
std::string escape_html(std::string_view text);
std::string base64_encode(std::string_view bytes);
// An 8-bit RGB PNG of `image` in memory.
std::string encode_png(const Image& image);

}  // namespace graft
