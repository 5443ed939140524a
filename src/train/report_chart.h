// Line charts as inline SVG for report.html: axes with round ticks, grid
// lines, a legend, one polyline per series (broken at non-finite values),
// a dot per point with its value as a tooltip, and an optional vertical
// marker (the best epoch).
#pragma once

#include <string>
#include <vector>

namespace graft::report {

struct ChartSeries {
  std::string label;
  std::vector<double> y;  // one per x
  std::string color;      // a CSS colour
  bool dashed = false;
};

struct LineChart {
  std::string title;
  std::string x_label = "epoch";
  std::string y_label;
  std::vector<double> x;  // increasing
  std::vector<ChartSeries> series;
  bool percent = false;  // y values are fractions, drawn on a fixed 0..100% axis
  double marker_x = 0;   // > 0: a vertical marker at this x
  std::string marker_label;
};

// The <svg> element. Labels are escaped here.
std::string render_line_chart(const LineChart& chart);

// Round tick positions covering [lo, hi] with about `target` intervals
// (steps of 1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target);

}  // namespace graft::report
