#include "graft/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "graft/error.h"
#include "graft/file.h"
#include "train/report_chart.h"

namespace graft {

namespace {

using Out = std::back_insert_iterator<std::string>;

// The page's whole style. The Content-Security-Policy in the head forbids
// every load except data: images, so a report cannot reach the network even
// if a string slipped through unescaped.
constexpr const char* kStyle = R"(
:root { --fg: #1f2328; --muted: #59636e; --line: #d8dee4; --panel: #f6f8fa;
        --accent: #2f6fdf; --good: #1a7f4b; --bad: #c93c4b; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
             sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 16px; overflow-wrap: anywhere; }
h2 { font-size: 18px; margin: 36px 0 12px; padding-bottom: 6px;
     border-bottom: 1px solid var(--line); }
p, li { max-width: 80ch; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
        padding: 8px 16px; min-width: 120px; }
.card .value { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
.notes { padding-left: 20px; }
.scroll { overflow-x: auto; }
.columns { display: flex; flex-wrap: wrap; column-gap: 48px; }
.columns section { flex: 1 1 320px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: middle; }
th { font-weight: 600; }
.num { text-align: right; }
tr.best td { font-weight: 600; }
tr.total td { border-top: 2px solid var(--line); font-weight: 600; }
.tag { font-size: 12px; color: #fff; background: var(--good); border-radius: 4px;
       padding: 1px 6px; margin-left: 6px; font-weight: 600; }
.bar { width: 220px; height: 12px; background: #e9edf1; border-radius: 6px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--accent); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 20px; }
svg.chart { width: 100%; height: auto; font-size: 12px; fill: var(--fg); }
svg.chart .title { font-size: 14px; font-weight: 600; }
svg.chart .label { fill: var(--muted); font-size: 13px; }
svg.chart .grid { stroke: #eaeef2; }
svg.chart .axis, svg.chart .tick { stroke: #8c959f; }
svg.chart .marker { stroke: var(--good); stroke-dasharray: 4 3; stroke-width: 1.5; }
svg.chart .marker-label { fill: var(--good); font-weight: 600; }
table.confusion td { text-align: center; min-width: 44px; border: 1px solid #fff; }
table.confusion th.corner { font-weight: 400; color: var(--muted); font-size: 12px; }
table.confusion th.col { text-align: center; font-size: 13px; }
table.confusion.many th.col { writing-mode: vertical-rl; transform: rotate(180deg);
                              text-align: left; padding: 8px 2px; }
.thumbs { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 12px; }
figure.thumb { margin: 0; padding: 10px; background: var(--panel); border: 1px solid var(--line);
               border-radius: 8px; }
figure.thumb .pic { height: 96px; display: flex; align-items: center; justify-content: center;
                    margin-bottom: 6px; }
figure.thumb img { image-rendering: auto; border-radius: 3px; }
figure.thumb figcaption { font-size: 13px; line-height: 1.4; }
.true { color: var(--good); }
.pred { color: var(--bad); }
.path { color: var(--muted); font-size: 11px; overflow-wrap: anywhere; }
.error { color: var(--bad); font-size: 12px; overflow-wrap: anywhere; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
)";

std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return "n/a";
  return fmt::format("{:.1f}%", fraction * 100);
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "n/a";
  if (seconds < 10) return fmt::format("{:.2f} s", seconds);
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, s % 3600 / 60);
}

std::string class_name(const ReportData& d, int64_t c) {
  if (c >= 0 && c < static_cast<int64_t>(d.class_names.size()) && !d.class_names[c].empty())
    return d.class_names[c];
  return fmt::format("class {}", c);
}

double total_seconds(const ReportData& d) {
  double sum = 0;
  for (const auto& [name, seconds] : d.timings) {
    if (name == "total") return seconds;
    sum += seconds;
  }
  return sum;
}

const EpochRecord* best_record(const ReportData& d) {
  for (const EpochRecord& r : d.history)
    if (r.epoch == d.best_epoch) return &r;
  return nullptr;
}

void card(Out o, const std::string& value, const std::string& label) {
  fmt::format_to(
      o, R"(<div class="card"><div class="value">{}</div><div class="label">{}</div></div>)",
      escape_html(value), escape_html(label));
}

// A horizontal bar for a fraction in 0..1.
std::string bar(double fraction) {
  double w = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) * 100 : 0;
  return fmt::format(R"(<div class="bar"><span style="width:{:.1f}%"></span></div>)", w);
}

void summary(Out o, const ReportData& d) {
  fmt::format_to(o, R"(<section id="summary"><div class="cards">)");
  if (d.test.samples > 0) {
    card(o, percent(d.test.accuracy), fmt::format("test accuracy ({} images)", d.test.samples));
    if (d.test.k > 1)
      card(o, percent(d.test.top_k_accuracy), fmt::format("top-{} accuracy", d.test.k));
  }
  if (const EpochRecord* best = best_record(d)) {
    card(o, fmt::format("{} of {}", d.best_epoch, d.history.size()), "best epoch");
    card(o, percent(best->eval_accuracy), d.eval_name + " accuracy, best epoch");
  }
  if (!d.timings.empty()) card(o, duration(total_seconds(d)), "total time");
  if (!d.class_names.empty()) card(o, fmt::format("{}", d.class_names.size()), "classes");
  o = fmt::format_to(o, "</div>");
  if (!d.notes.empty()) {
    o = fmt::format_to(o, R"(<ul class="notes">)");
    for (const std::string& n : d.notes) o = fmt::format_to(o, "<li>{}</li>", escape_html(n));
    o = fmt::format_to(o, "</ul>");
  }
  fmt::format_to(o, "</section>");
}

void curves(Out o, const ReportData& d) {
  report::LineChart loss, accuracy;
  loss.title = "Loss per epoch";
  loss.y_label = "cross-entropy";
  accuracy.title = "Accuracy per epoch";
  accuracy.y_label = "accuracy";
  accuracy.percent = true;
  report::ChartSeries train_loss{"train", {}, "#2f6fdf"}, eval_loss{d.eval_name, {}, "#d9480f"};
  report::ChartSeries train_acc = train_loss, eval_acc = eval_loss;
  for (const EpochRecord& r : d.history) {
    loss.x.push_back(static_cast<double>(r.epoch));
    train_loss.y.push_back(r.train_loss);
    eval_loss.y.push_back(r.eval_loss);
    train_acc.y.push_back(r.train_accuracy);
    eval_acc.y.push_back(r.eval_accuracy);
  }
  accuracy.x = loss.x;
  loss.series = {train_loss, eval_loss};
  accuracy.series = {train_acc, eval_acc};
  if (best_record(d)) {
    loss.marker_x = accuracy.marker_x = static_cast<double>(d.best_epoch);
    loss.marker_label = accuracy.marker_label = fmt::format("best: epoch {}", d.best_epoch);
  }
  fmt::format_to(o,
                 R"(<section id="curves"><h2>Training curves</h2><div class="charts">{}{}</div>)",
                 report::render_line_chart(loss), report::render_line_chart(accuracy));
  if (d.history.empty()) fmt::format_to(o, R"(<p class="muted">No epochs were recorded.</p>)");
  fmt::format_to(o, "</section>");
}

// Rows are true classes, columns predicted ones; a cell's shade is its share
// of the row (green on the diagonal, red off it), so a class with few
// samples reads as clearly as a large one.
void confusion(Out o, const ReportData& d) {
  const auto& m = d.test.confusion;
  const size_t n = m.size();
  o = fmt::format_to(o, R"(<section id="confusion"><h2>Confusion matrix</h2>)"
                        R"(<p class="muted">Rows: true class. Columns: predicted class. )"
                        R"(Shade: share of the row.</p><div class="scroll">)");
  o = fmt::format_to(o,
                     R"(<table class="confusion{}"><tr><th class="corner">true \ predicted</th>)",
                     n > 8 ? " many" : "");
  for (size_t j = 0; j < n; ++j)
    o = fmt::format_to(o, R"(<th class="col">{}</th>)", escape_html(class_name(d, j)));
  o = fmt::format_to(o, R"(<th class="num">total</th></tr>)");
  for (size_t i = 0; i < n; ++i) {
    int64_t row_total = 0;
    for (int64_t v : m[i]) row_total += v;
    o = fmt::format_to(o, "<tr><th>{}</th>", escape_html(class_name(d, i)));
    for (size_t j = 0; j < m[i].size(); ++j) {
      double share = row_total ? static_cast<double>(m[i][j]) / row_total : 0;
      const char* rgb = i == j ? "26,127,75" : "201,60,75";
      std::string style = m[i][j] == 0
                              ? "color:#b0b8c1"
                              : fmt::format("background:rgba({},{:.3f});color:{}", rgb,
                                            0.12 + 0.88 * share, share > 0.5 ? "#fff" : "inherit");
      o = fmt::format_to(o, R"(<td style="{}" title="{:.1f}% of {}">{}</td>)", style, share * 100,
                         escape_html(class_name(d, i)), m[i][j]);
    }
    o = fmt::format_to(o, R"(<td class="num">{}</td></tr>)", row_total);
  }
  fmt::format_to(o, "</table></div></section>");
}

void per_class(Out o, const ReportData& d) {
  o = fmt::format_to(o,
                     R"(<section id="per-class"><h2>Per-class metrics</h2><div class="scroll">)"
                     R"(<table class="per-class"><tr><th>class</th><th class="num">precision</th>)"
                     R"(<th class="num">recall</th><th class="num">F1</th>)"
                     R"(<th class="num">support</th><th></th></tr>)");
  double p = 0, r = 0, f = 0;
  int64_t support = 0;
  const auto& pc = d.test.per_class;
  for (size_t c = 0; c < pc.size(); ++c) {
    o = fmt::format_to(o,
                       R"(<tr><td>{}</td><td class="num">{:.3f}</td><td class="num">{:.3f}</td>)"
                       R"(<td class="num">{:.3f}</td><td class="num">{}</td><td>{}</td></tr>)",
                       escape_html(class_name(d, c)), pc[c].precision, pc[c].recall, pc[c].f1,
                       pc[c].support, bar(pc[c].f1));
    p += pc[c].precision, r += pc[c].recall, f += pc[c].f1, support += pc[c].support;
  }
  if (!pc.empty()) {
    double k = static_cast<double>(pc.size());
    o = fmt::format_to(o,
                       R"(<tr class="total"><td>mean over classes</td><td class="num">{:.3f}</td>)"
                       R"(<td class="num">{:.3f}</td><td class="num">{:.3f}</td>)"
                       R"(<td class="num">{}</td><td></td></tr>)",
                       p / k, r / k, f / k, support);
  }
  fmt::format_to(o, "</table></div></section>");
}

// Name, accuracy and a bar per row; `best` marks the highest row.
void accuracy_table(Out o, const std::string& id, const std::string& heading,
                    const std::string& first_column, const std::string& value_column,
                    const std::vector<std::pair<std::string, double>>& rows, bool mark_best) {
  size_t best = 0;
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i].second > rows[best].second) best = i;
  o = fmt::format_to(o,
                     R"(<section id="{}"><h2>{}</h2><table class="{}"><tr><th>{}</th>)"
                     R"(<th class="num">{}</th><th></th></tr>)",
                     id, escape_html(heading), id, escape_html(first_column),
                     escape_html(value_column));
  for (size_t i = 0; i < rows.size(); ++i) {
    bool is_best = mark_best && i == best;
    o = fmt::format_to(o, R"(<tr{}><td>{}{}</td><td class="num">{}</td><td>{}</td></tr>)",
                       is_best ? R"( class="best")" : "", escape_html(rows[i].first),
                       is_best ? R"(<span class="tag">best</span>)" : "", percent(rows[i].second),
                       bar(rows[i].second));
  }
  fmt::format_to(o, "</table></section>");
}

void settings_and_timings(Out o, const ReportData& d) {
  o = fmt::format_to(o, R"(<div class="columns"><section id="settings"><h2>Settings</h2>)"
                        R"(<table class="settings">)");
  for (const auto& [name, value] : d.settings)
    o = fmt::format_to(o, "<tr><th>{}</th><td>{}</td></tr>", escape_html(name), escape_html(value));
  if (d.settings.empty()) o = fmt::format_to(o, R"(<tr><td class="muted">none recorded</td></tr>)");
  o = fmt::format_to(o, R"(</table></section><section id="timings"><h2>Timings</h2>)"
                        R"(<table class="timings">)");
  bool has_total = false;
  for (const auto& [name, seconds] : d.timings) {
    has_total |= name == "total";
    o = fmt::format_to(o, R"(<tr{}><td>{}</td><td class="num">{}</td></tr>)",
                       name == "total" ? R"( class="total")" : "", escape_html(name),
                       duration(seconds));
  }
  if (!has_total && d.timings.size() > 1)
    o = fmt::format_to(o, R"(<tr class="total"><td>total</td><td class="num">{}</td></tr>)",
                       duration(total_seconds(d)));
  if (d.timings.empty()) o = fmt::format_to(o, R"(<tr><td class="muted">none recorded</td></tr>)");
  fmt::format_to(o, "</table></section></div>");
}

struct Thumbnail {
  std::string png;  // empty: failed, see error
  int width = 0, height = 0;
  std::string error;
};

// Decodes with graft's own decoder (JPEG at a reduced DCT scale when that
// still covers the thumbnail) and shrinks with its antialiasing resampler.
Thumbnail make_thumbnail(const std::string& path, const Preprocess& p) {
  Thumbnail t;
  try {
    std::string bytes = read_image_file(path);
    ImageInfo info = probe_image(bytes, path, p.max_pixels);
    double scale = std::min(double(kReportThumbnailSize) / info.width,
                            double(kReportThumbnailSize) / info.height);
    t.width = std::max(1, static_cast<int>(std::lround(info.width * scale)));
    t.height = std::max(1, static_cast<int>(std::lround(info.height * scale)));
    DecodeOptions o;
    o.background = p.background;
    o.max_pixels = p.max_pixels;
    o.min_width = t.width;
    o.min_height = t.height;
    Image full = decode_image(bytes, path, o);
    std::vector<float> rgb(size_t(t.width) * t.height * 3);
    resample(full, Box{0, 0, double(full.width), double(full.height)}, t.width, t.height,
             rgb.data());
    Image small{t.width, t.height, std::vector<uint8_t>(rgb.size())};
    for (size_t i = 0; i < rgb.size(); ++i)
      small.pixels[i] = static_cast<uint8_t>(std::clamp(std::lround(rgb[i]), 0L, 255L));
    t.png = encode_png(small);
  } catch (const std::exception& e) {
    t.png.clear();
    t.error = e.what();
  }
  return t;
}

void misclassified(Out o, const ReportData& d) {
  o = fmt::format_to(o, R"(<section id="misclassified"><h2>Misclassified test images</h2>)");
  if (d.misclassified.empty()) {
    fmt::format_to(o, R"(<p class="muted">None.</p></section>)");
    return;
  }
  o = fmt::format_to(o, R"(<p class="muted">{} image{}.</p><div class="thumbs">)",
                     d.misclassified.size(), d.misclassified.size() == 1 ? "" : "s");
  const size_t shown = std::min<size_t>(d.misclassified.size(), kReportMaxThumbnails);
  for (size_t i = 0; i < shown; ++i) {
    const ReportImage& im = d.misclassified[i];
    Thumbnail t = make_thumbnail(im.path, d.thumbnail_preprocess);
    std::string alt = escape_html(im.path);
    o = fmt::format_to(o, R"(<figure class="thumb"><div class="pic">)");
    if (!t.png.empty())
      o = fmt::format_to(o,
                         R"(<img src="data:image/png;base64,{}" width="{}" height="{}" alt="{}">)",
                         base64_encode(t.png), t.width, t.height, alt);
    else
      o = fmt::format_to(o, R"(<div class="error">cannot show: {}</div>)", escape_html(t.error));
    o = fmt::format_to(o,
                       R"(</div><figcaption><div class="true">true: {}</div>)"
                       R"(<div class="pred">predicted: {} ({})</div>)"
                       R"(<div class="path" title="{}">{}</div></figcaption></figure>)",
                       escape_html(class_name(d, im.truth)),
                       escape_html(class_name(d, im.predicted)), percent(im.confidence), alt, alt);
  }
  o = fmt::format_to(o, "</div>");
  if (shown < d.misclassified.size()) {
    o = fmt::format_to(o,
                       R"(<p class="muted">{} more, without thumbnails:</p><table class="more">)"
                       R"(<tr><th>image</th><th>true</th><th>predicted</th>)"
                       R"(<th class="num">confidence</th></tr>)",
                       d.misclassified.size() - shown);
    for (size_t i = shown; i < d.misclassified.size(); ++i) {
      const ReportImage& im = d.misclassified[i];
      o = fmt::format_to(
          o, R"(<tr><td class="path">{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>)",
          escape_html(im.path), escape_html(class_name(d, im.truth)),
          escape_html(class_name(d, im.predicted)), percent(im.confidence));
    }
    o = fmt::format_to(o, "</table>");
  }
  fmt::format_to(o, "</section>");
}

}  // namespace

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) v |= uint8_t(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < bytes.size() ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string render_report(const ReportData& d) {
  std::string html;
  Out o(html);
  std::string title = d.title.empty() ? "graft report" : d.title;
  o = fmt::format_to(o,
                     "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     R"(<meta http-equiv="Content-Security-Policy" content="default-src 'none'; )"
                     R"(img-src data:; style-src 'unsafe-inline'">)"
                     R"(<meta name="viewport" content="width=device-width, initial-scale=1">)"
                     "<title>{}</title><style>{}</style></head>\n<body><main>\n<h1>{}</h1>\n",
                     escape_html(title), kStyle, escape_html(title));
  summary(o, d);
  curves(o, d);
  if (!d.test.confusion.empty()) {
    confusion(o, d);
    per_class(o, d);
  }
  if (!d.comparisons.empty())
    accuracy_table(o, "comparisons", "Comparison", "run", "accuracy", d.comparisons, false);
  if (!d.cut_table.empty())
    accuracy_table(o, "cut-search", "Cut search", "cut", "validation accuracy", d.cut_table, true);
  settings_and_timings(o, d);
  misclassified(o, d);
  fmt::format_to(o,
                 "\n<footer>Written by graft. This page is self-contained: it loads nothing "
                 "from the network.</footer>\n</main></body></html>\n");
  return html;
}

void write_report(const std::string& path, const ReportData& data) {
  write_file_atomically(path, render_report(data));
}

}  // namespace graft
