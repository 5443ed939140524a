// report.html: the values it shows, escaping, no network references, the
// thumbnails as data: URIs that decode back, unreadable images shown as
// errors, and the PNG encoder, base64 and chart helpers it is built from.
#include "graft/report.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <filesystem>

#include "graft/file.h"
#include "report_sample.h"
#include "train/report_chart.h"

using namespace graft;

namespace {

using graft::test::fixture;
using graft::test::sample_data;

std::string base64_decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    EXPECT_NE(v, std::string::npos) << "not base64: " << c;
    bits = bits << 6 | uint32_t(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>(bits >> count & 0xff);
    }
  }
  return out;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A plain search, not std::regex: libstdc++'s matcher recurses once per
// character and overflowed the stack on a thumbnail's base64 under ASan.
std::vector<std::string> data_uris(const std::string& html) {
  const std::string prefix = "src=\"data:image/png;base64,";
  const std::string base64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
  std::vector<std::string> out;
  for (size_t at = html.find(prefix); at != std::string::npos; at = html.find(prefix, at + 1)) {
    const size_t begin = at + prefix.size();
    const size_t end = html.find_first_not_of(base64, begin);
    if (end != std::string::npos && end > begin && html[end] == '"') out.push_back(html.substr(begin, end - begin));
  }
  return out;
}

TEST(Report, ShowsTheValues) {
  std::string html = render_report(sample_data());
  EXPECT_NE(html.find("<title>graft train: mobilenet_v2 on data/&lt;demo&gt;</title>"),
            std::string::npos);
  EXPECT_NE(html.find("70.0%"), std::string::npos);  // test accuracy
  EXPECT_NE(html.find("90.0%"), std::string::npos);  // top-2
  EXPECT_NE(html.find("top-2 accuracy"), std::string::npos);
  EXPECT_NE(html.find("3 of 4"), std::string::npos);  // best epoch
  EXPECT_NE(html.find("15.8 s"), std::string::npos);  // total time: 12.5 + 3.25
  EXPECT_NE(html.find("validation accuracy, best epoch"), std::string::npos);
  for (const char* name : {"cat", "dog", "&lt;b&gt;&amp;"})
    EXPECT_NE(html.find(name), std::string::npos);
  EXPECT_EQ(html.find("<b>&"), std::string::npos);
  // Confusion counts and row totals, per-class numbers.
  EXPECT_NE(html.find(R"(title="75.0% of cat">3</td>)"), std::string::npos);
  EXPECT_NE(html.find(R"(title="33.3% of &lt;b&gt;&amp;">1</td>)"), std::string::npos);
  EXPECT_NE(html.find(R"(<td class="num">0.750</td>)"), std::string::npos);
  EXPECT_NE(html.find(R"(<td class="num">0.667</td>)"), std::string::npos);
  // Comparisons, the cut table with its best row marked, settings, notes.
  EXPECT_NE(html.find("pretrained trunk"), std::string::npos);
  EXPECT_NE(html.find("82.0%"), std::string::npos);
  EXPECT_NE(html.find("41.0%"), std::string::npos);
  EXPECT_NE(html.find(R"(<tr class="best"><td>block_16_project_BN<span class="tag">best</span>)"),
            std::string::npos);
  EXPECT_NE(html.find("pool &amp; flatten"), std::string::npos);
  EXPECT_NE(html.find("the validation set picked the best epoch"), std::string::npos);
  // Two charts with the best epoch marked; labels and tooltips.
  EXPECT_EQ(count(html, "<svg class=\"chart\""), 2u);
  EXPECT_EQ(count(html, "best: epoch 3"), 2u);
  EXPECT_NE(html.find("<title>validation 3: 70.0%</title>"), std::string::npos);
  // Misclassified: labels and confidence.
  EXPECT_NE(html.find("true: cat"), std::string::npos);
  EXPECT_NE(html.find("predicted: dog (61.0%)"), std::string::npos);
  EXPECT_NE(html.find("predicted: &lt;b&gt;&amp; (87.5%)"), std::string::npos);
}

TEST(Report, SelfContained) {
  std::string html = render_report(sample_data());
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(html, render_report(sample_data()));  // deterministic
}

TEST(Report, ThumbnailsDecodeBack) {
  std::string html = render_report(sample_data());
  std::vector<std::string> uris = data_uris(html);
  ASSERT_EQ(uris.size(), 3u);
  Image png = decode_image(base64_decode(uris[0]), "thumbnail");
  EXPECT_EQ(png.width, 96);  // 64x48 scaled to fit 96x96
  EXPECT_EQ(png.height, 72);
  EXPECT_NE(html.find(R"(width="96" height="72")"), std::string::npos);
  // The fixture's red block top-left and blue block bottom-right survive.
  const uint8_t* tl = png.row(2) + 2 * 3;
  EXPECT_GT(tl[0], 180);
  EXPECT_LT(tl[2], 80);
  const uint8_t* br = png.row(70) + 94 * 3;
  EXPECT_GT(br[2], 180);
  EXPECT_LT(br[0], 80);
  Image jpg = decode_image(base64_decode(uris[1]), "thumbnail");
  EXPECT_EQ(jpg.width, 96);
  EXPECT_EQ(jpg.height, 72);
}

TEST(Report, UnreadableImageShowsItsError) {
  ReportData d = sample_data();
  d.misclassified = {{fixture("corrupt.png"), 0, 1, 0.9},
                     {"/nonexistent/x<y>.jpg", 1, 0, 0.6},
                     {fixture("rgb.png"), 2, 1, 0.7}};
  std::string html = render_report(d);
  EXPECT_EQ(data_uris(html).size(), 1u);
  EXPECT_NE(html.find("corrupt.png: bad PNG"), std::string::npos);
  EXPECT_NE(html.find("/nonexistent/x&lt;y&gt;.jpg"), std::string::npos);
  EXPECT_EQ(count(html, R"(<div class="error">cannot show: )"), 2u);
}

TEST(Report, ManyMisclassifiedAreListedBeyondTheThumbnailLimit) {
  ReportData d = sample_data();
  d.misclassified.assign(kReportMaxThumbnails + 3, {"/nonexistent/a.png", 0, 1, 0.5});
  std::string html = render_report(d);
  EXPECT_EQ(count(html, R"(<figure class="thumb">)"), size_t(kReportMaxThumbnails));
  EXPECT_NE(html.find("3 more, without thumbnails"), std::string::npos);
}

TEST(Report, EmptyDataStillRenders) {
  std::string html = render_report(ReportData{});
  EXPECT_NE(html.find("<title>graft report</title>"), std::string::npos);
  EXPECT_NE(html.find("no epochs recorded"), std::string::npos);
  EXPECT_EQ(html.find(R"(id="confusion")"), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
}

TEST(Report, ClassWithoutNameAndNonFiniteValues) {
  ReportData d = sample_data();
  d.class_names = {"cat"};
  d.history[1].eval_loss = std::nan("");
  std::string html = render_report(d);
  EXPECT_NE(html.find("<th>class 2</th>"), std::string::npos);
  // The eval loss line breaks at the NaN: two polylines for it, one for train.
  EXPECT_EQ(count(html, "<polyline"), 3u + 2u);
}

TEST(Report, WriteReportWritesTheSameBytes) {
  std::string path = test::temp_path("graft_report_test.html").string();
  write_report(path, sample_data());
  EXPECT_EQ(read_file(path), render_report(sample_data()));
  std::filesystem::remove(path);
}

TEST(Report, EscapeHtml) {
  EXPECT_EQ(escape_html(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(escape_html("plain ü"), "plain ü");
}

TEST(Report, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
}

TEST(Report, EncodePngRoundTrips) {
  Image im{5, 3, {}};
  for (int i = 0; i < 5 * 3 * 3; ++i) im.pixels.push_back(static_cast<uint8_t>(i * 17));
  Image back = decode_image(encode_png(im), "encoded");
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, im.pixels);
  EXPECT_THROW(encode_png(Image{}), Error);
}

TEST(Report, NiceTicks) {
  EXPECT_EQ(report::nice_ticks(0, 1.23, 5), (std::vector<double>{0, 0.5, 1.0, 1.5}));
  std::vector<double> t = report::nice_ticks(0, 2.3, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t.back(), 2.5, 1e-12);
  EXPECT_EQ(report::nice_ticks(0, 7, 5), (std::vector<double>{0, 2, 4, 6, 8}));
}

}  // namespace
