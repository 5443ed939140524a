#include "train/report_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "graft/report.h"

namespace graft::report {

namespace {

constexpr double kWidth = 560, kHeight = 336;
// Above the plot: the title and legend (y 20 to 38), then the marker's label.
constexpr double kLeft = 64, kRight = 20, kTop = 60, kBottom = 52;
constexpr double kInset = 10;  // keeps the first and last points off the axes

double nice_step(double range, int target) {
  if (!(range > 0)) return 1;
  double raw = range / target;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * power) return m * power;
  return 10 * power;
}

// Digits after the point that tell ticks `step` apart.
int decimals_for(double step) {
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6);
}

struct Axis {
  double lo, hi;        // data range
  double px_lo, px_hi;  // pixel range (px_hi may be above or below px_lo)
  double at(double v) const { return px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo); }
};

std::string format_tick(double v, double step, bool percent) {
  if (percent) return fmt::format("{:.0f}%", v * 100);
  return fmt::format("{:.{}f}", v, decimals_for(step));
}

// The value range of the y axis: percentages are always 0..1; losses start
// at zero and end at a round value above the largest finite value.
std::vector<double> y_ticks(const LineChart& c) {
  if (c.percent) return {0, 0.2, 0.4, 0.6, 0.8, 1.0};
  double hi = 0;
  for (const ChartSeries& s : c.series)
    for (double v : s.y)
      if (std::isfinite(v)) hi = std::max(hi, v);
  if (hi <= 0) hi = 1;
  return nice_ticks(0, hi, 5);
}

void draw_axes(std::string& out, const LineChart& c, const Axis& x, const Axis& y,
               const std::vector<double>& yt) {
  auto o = std::back_inserter(out);
  double y_step = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : yt) {
    double py = y.at(v);
    fmt::format_to(o, R"(<line class="grid" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"/>)",
                   kLeft, py, kWidth - kRight, py);
    fmt::format_to(o, R"(<text x="{:.1f}" y="{:.1f}" text-anchor="end">{}</text>)", kLeft - 6,
                   py + 4, format_tick(v, y_step, c.percent));
  }
  double x_step = std::max(1.0, nice_step(x.hi - x.lo, 8));
  for (double v = std::ceil(x.lo / x_step) * x_step; v <= x.hi + 1e-9; v += x_step) {
    double px = x.at(v);
    fmt::format_to(o, R"(<line class="tick" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"/>)", px,
                   kHeight - kBottom, px, kHeight - kBottom + 5);
    fmt::format_to(o, R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", px,
                   kHeight - kBottom + 18, format_tick(v, x_step, false));
  }
  fmt::format_to(o, R"(<line class="axis" x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}"/>)",
                 kLeft, kTop, kHeight - kBottom);
  fmt::format_to(o, R"(<line class="axis" x1="{0:.1f}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}"/>)",
                 kLeft, kHeight - kBottom, kWidth - kRight);
  fmt::format_to(o, R"(<text class="label" x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)",
                 (kLeft + kWidth - kRight) / 2, kHeight - 12, escape_html(c.x_label));
  double mid = (kTop + kHeight - kBottom) / 2;
  fmt::format_to(o,
                 R"(<text class="label" x="16" y="{0:.1f}" text-anchor="middle" )"
                 R"svg(transform="rotate(-90 16 {0:.1f})">{1}</text>)svg",
                 mid, escape_html(c.y_label));
}

void draw_legend(std::string& out, const LineChart& c) {
  auto o = std::back_inserter(out);
  fmt::format_to(o, R"(<text class="title" x="{:.1f}" y="20">{}</text>)", kLeft,
                 escape_html(c.title));
  // Right-aligned, last series rightmost; the width is estimated from the
  // label length since SVG cannot measure text without a script.
  double x = kWidth - kRight;
  for (auto it = c.series.rbegin(); it != c.series.rend(); ++it) {
    x -= 7.0 * it->label.size() + 34;
    fmt::format_to(
        o, R"(<line x1="{:.1f}" y1="34" x2="{:.1f}" y2="34" stroke="{}" stroke-width="2.5"{}/>)", x,
        x + 20, escape_html(it->color), it->dashed ? R"( stroke-dasharray="5 3")" : "");
    fmt::format_to(o, R"(<text x="{:.1f}" y="38">{}</text>)", x + 25, escape_html(it->label));
  }
}

void draw_series(std::string& out, const LineChart& c, const ChartSeries& s, const Axis& x,
                 const Axis& y) {
  auto o = std::back_inserter(out);
  std::string color = escape_html(s.color);
  // One polyline per run of finite values.
  std::string points;
  auto flush = [&] {
    if (!points.empty())
      fmt::format_to(o,
                     R"(<polyline fill="none" stroke="{}" stroke-width="2.5" )"
                     R"(stroke-linejoin="round"{} points="{}"/>)",
                     color, s.dashed ? R"( stroke-dasharray="5 3")" : "", points);
    points.clear();
  };
  size_t n = std::min(s.y.size(), c.x.size());
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(s.y[i])) {
      flush();
      continue;
    }
    double v = std::clamp(s.y[i], y.lo, y.hi);
    fmt::format_to(std::back_inserter(points), "{}{:.1f},{:.1f}", points.empty() ? "" : " ",
                   x.at(c.x[i]), y.at(v));
  }
  flush();
  bool many = n > 25;  // full-size dots would crowd the line
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(s.y[i])) continue;
    double v = std::clamp(s.y[i], y.lo, y.hi);
    std::string value =
        c.percent ? fmt::format("{:.1f}%", s.y[i] * 100) : fmt::format("{:.4g}", s.y[i]);
    fmt::format_to(
        o, R"(<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}"><title>{} {}: {}</title></circle>)",
        x.at(c.x[i]), y.at(v), many ? 1.5 : 3, color, escape_html(s.label),
        fmt::format("{:g}", c.x[i]), value);
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  double step = nice_step(hi - lo, target);
  std::vector<double> ticks;
  double first = std::floor(lo / step + 1e-9) * step;
  double last = std::ceil(hi / step - 1e-9) * step;
  for (int i = 0; first + i * step <= last + step * 1e-6; ++i) ticks.push_back(first + i * step);
  if (ticks.size() < 2) ticks.push_back(first + step);
  return ticks;
}

std::string render_line_chart(const LineChart& c) {
  std::string out;
  auto o = std::back_inserter(out);
  fmt::format_to(o, R"(<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">)", kWidth,
                 kHeight, escape_html(c.title));
  if (c.x.empty()) {
    fmt::format_to(o, R"(<text class="title" x="{}" y="20">{}</text>)", kLeft,
                   escape_html(c.title));
    fmt::format_to(o, R"(<text x="{}" y="{}" text-anchor="middle">no epochs recorded</text>)",
                   kWidth / 2, kHeight / 2);
    return out + "</svg>";
  }
  double x_lo = c.x.front(), x_hi = c.x.back();
  if (x_hi <= x_lo) x_lo -= 0.5, x_hi += 0.5;
  std::vector<double> yt = y_ticks(c);
  Axis x{x_lo, x_hi, kLeft + kInset, kWidth - kRight - kInset};
  Axis y{yt.front(), yt.back(), kHeight - kBottom, kTop};
  draw_axes(out, c, x, y, yt);
  if (c.marker_x > 0) {
    double px = x.at(c.marker_x);
    fmt::format_to(o,
                   R"(<line class="marker" x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}"/>)",
                   px, kTop, kHeight - kBottom);
    // The label is centred above the marker, kept inside the chart; its
    // width is estimated since SVG cannot measure text without a script.
    double half = 3.5 * c.marker_label.size();
    double lx = std::clamp(px, kLeft + half, std::max(kLeft + half, kWidth - kRight - half));
    fmt::format_to(
        o, R"(<text class="marker-label" x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", lx,
        kTop - 8, escape_html(c.marker_label));
  }
  draw_legend(out, c);
  for (const ChartSeries& s : c.series) draw_series(out, c, s, x, y);
  return out + "</svg>";
}

}  // namespace graft::report
