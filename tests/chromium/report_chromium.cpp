// Renders report.html in headless Chromium and checks what the browser made
// of it: the parsed DOM (title, accuracies, class names, the SVG charts, the
// confusion table, the thumbnails) and a screenshot (the chart lines, the
// confusion shading and the thumbnails' pixels are on screen).
//
// Usage: report_chromium [DIR]   DIR keeps report.html, dom.html,
// screenshot.png and chromium.log for a look; without it a temporary folder
// is used and removed. Exits 77 (CTest's skip) when Chromium is not
// installed, 1 when a check fails. GRAFT_CHROMIUM overrides the browser.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "../report_sample.h"
#include "graft/file.h"
#include "graft/image.h"
#include "graft/report.h"

namespace fs = std::filesystem;
using namespace graft;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string find_chromium() {
  std::vector<std::string> names = {"chromium", "chromium-browser"};
  if (const char* env = std::getenv("GRAFT_CHROMIUM")) names = {env};
  for (const std::string& name : names)
    if (std::system(("command -v " + quote(name) + " >/dev/null 2>&1").c_str()) == 0) return name;
  return "";
}

// Runs Chromium headless on `url` with `extra` flags; stdout to `out`.
bool run_chromium(const std::string& chromium, const fs::path& dir, const std::string& extra,
                  const std::string& url, const fs::path& out) {
  // A fresh profile, and everything that would reach the network off.
  std::string profile = (dir / "profile").string();
  std::string cmd = "timeout 120 " + quote(chromium) +
                    " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                    " --disable-background-networking --disable-component-update --disable-sync"
                    " --user-data-dir=" +
                    quote(profile) + " " + extra + " " + quote(url) + " > " + quote(out.string()) +
                    " 2>> " + quote((dir / "chromium.log").string());
  int status = std::system(cmd.c_str());
  fs::remove_all(profile);
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

void check_dom(const std::string& dom) {
  check(has(dom, "<title>graft train: mobilenet_v2 on data/&lt;demo&gt;</title>"), "title");
  check(has(dom, "<h1>graft train: mobilenet_v2 on data/&lt;demo&gt;</h1>"), "heading");
  check(has(dom, "70.0%") && has(dom, "test accuracy (10 images)"), "test accuracy");
  check(has(dom, "3 of 4"), "best epoch");
  for (const char* name : {">cat<", ">dog<", ">&lt;b&gt;&amp;<"})
    check(count(dom, name) >= 3, std::string("class name ") + name + " in tables and thumbnails");
  check(count(dom, "<svg class=\"chart\"") == 2, "two SVG charts");
  check(count(dom, "<polyline") == 4, "two lines per chart");
  check(count(dom, "best: epoch 3") == 2, "best epoch marked on both charts");
  check(has(dom, "<table class=\"confusion\">"), "confusion table");
  check(has(dom, "title=\"75.0% of cat\">3</td>"), "confusion count");
  check(has(dom, "<table class=\"per-class\">") && has(dom, "0.667"), "per-class table");
  check(has(dom, "block_16_project_BN<span class=\"tag\">best</span>"), "cut table");
  check(has(dom, "pretrained trunk") && has(dom, "82.0%"), "comparisons");
  check(count(dom, "<img src=\"data:image/png;base64,") == 3, "three thumbnails");
  check(has(dom, "predicted: &lt;b&gt;&amp; (87.5%)"), "thumbnail caption");
  check(!has(dom, "<b>&amp;") && !has(dom, "<script"), "nothing unescaped, no scripts");
}

// Pixels of a colour within `tolerance` per channel.
size_t pixels_near(const Image& im, int r, int g, int b, int tolerance) {
  size_t n = 0;
  for (size_t i = 0; i + 2 < im.pixels.size(); i += 3)
    n += std::abs(im.pixels[i] - r) <= tolerance && std::abs(im.pixels[i + 1] - g) <= tolerance &&
         std::abs(im.pixels[i + 2] - b) <= tolerance;
  return n;
}

void check_screenshot(const fs::path& png) {
  Image im;
  try {
    im = decode_image_file(png.string());
  } catch (const std::exception& e) {
    check(false, std::string("screenshot decodes: ") + e.what());
    return;
  }
  check(im.width == 1200 && im.height == 2400, "screenshot is 1200x2400");
  // The chart lines (train blue, eval orange), the confusion matrix's
  // green diagonal and red misses, and the fixtures' blue block in the
  // thumbnails, which no other part of the page has.
  check(pixels_near(im, 0x2f, 0x6f, 0xdf, 24) > 500, "train lines drawn");
  check(pixels_near(im, 0xd9, 0x48, 0x0f, 24) > 500, "eval lines drawn");
  check(pixels_near(im, 26, 127, 75, 40) > 500, "confusion diagonal shaded");
  check(pixels_near(im, 201, 60, 75, 40) > 100, "confusion misses shaded");
  check(pixels_near(im, 20, 20, 230, 30) > 100, "thumbnails shown");
}

}  // namespace

int main(int argc, char** argv) {
  std::string chromium = find_chromium();
  if (chromium.empty()) {
    std::printf("chromium is not installed: skipped (scripts/setup.sh installs it)\n");
    return 77;
  }
  bool keep = argc > 1;
  fs::path dir;
  if (keep) {
    dir = fs::absolute(argv[1]);
    fs::create_directories(dir);
  } else {
    std::string tmpl = (fs::temp_directory_path() / "graft_report_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  fs::path html = dir / "report.html";
  write_report(html.string(), test::sample_data());
  std::string url = "file://" + html.string();

  bool ran = run_chromium(chromium, dir, "--dump-dom", url, dir / "dom.html");
  check(ran, "chromium --dump-dom ran");
  if (ran) check_dom(read_file((dir / "dom.html").string()));
  ran = run_chromium(chromium, dir,
                     "--screenshot=" + quote((dir / "screenshot.png").string()) +
                         " --window-size=1200,2400 --hide-scrollbars",
                     url, dir / "screenshot.out");
  check(ran, "chromium --screenshot ran");
  if (ran) check_screenshot(dir / "screenshot.png");

  if (failures)
    std::printf("%d checks failed; chromium's log: %s\n", failures, (dir / "chromium.log").c_str());
  if (!keep && !failures) fs::remove_all(dir);
  return failures ? 1 : 0;
}
