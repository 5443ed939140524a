// W4 (shared/PERF.md): images per second per core for decode + resize + crop
// + normalise of 500x375 JPEG photos to 224x224, against PIL + torchvision
// timed in the same run (scripts/bench_decode_pil.py), with the ratio.
//
//   bench_decode [--images DIR] [--count N] [--seconds S] [--no-pil]
//
// Without --images it makes N photos in a temporary folder first (with the
// same script). Everything runs on one thread: the figures are per core.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "graft/image.h"
#include "graft/loader.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string script() { return std::string(GRAFT_SOURCE_DIR) + "/scripts/bench_decode_pil.py"; }

std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  if (::pclose(p) != 0) std::fprintf(stderr, "command failed: %s\n", command.c_str());
  return out;
}

// The best images/s of repeated passes over `files` for `seconds`.
template <typename Fn>
double best_rate(const std::vector<std::string>& files, double seconds, Fn fn) {
  for (const std::string& f : files) fn(f);  // warm up
  double best = 0;
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  do {
    const auto start = Clock::now();
    for (const std::string& f : files) fn(f);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, double(files.size()) / s);
  } while (Clock::now() < deadline);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int count = 64;
  double seconds = 5;
  bool pil = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--images" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--count" && i + 1 < argc)
      count = std::atoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (a == "--no-pil")
      pil = false;
    else {
      std::fprintf(stderr, "usage: %s [--images DIR] [--count N] [--seconds S] [--no-pil]\n",
                   argv[0]);
      return 2;
    }
  }
  fs::path made;
  if (dir.empty()) {
    made = fs::temp_directory_path() / ("graft_bench_decode_" + std::to_string(::getpid()));
    dir = made.string();
    std::printf("making %d 500x375 JPEG photos in %s\n", count, dir.c_str());
    run("/usr/bin/python3 " + script() + " make " + dir + " --count " + std::to_string(count));
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".jpg") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "no .jpg files in %s\n", dir.c_str());
    return 1;
  }

  graft::Preprocess p;  // 224, shorter side to 256, centre crop, (x - 127.5) / 127.5
  std::vector<float> out(size_t(p.size) * p.size * 3);
  const double graft_rate = best_rate(files, seconds, [&](const std::string& f) {
    graft::load_image_into(f, p, {}, 0, out.data());
  });
  const double decode_rate =
      best_rate(files, seconds / 2, [&](const std::string& f) { graft::decode_image_file(f); });
  // The stages: decoding at the DCT scale load_image picks, and the rest.
  graft::Image sample = graft::decode_image_file(files[0]);
  const graft::Box box = graft::crop_box(sample.width, sample.height, p, {}, 0);
  graft::DecodeOptions scaled;
  scaled.min_width = int(std::ceil(sample.width * double(p.size) / box.w - 1e-6));
  scaled.min_height = int(std::ceil(sample.height * double(p.size) / box.h - 1e-6));
  const double scaled_rate = best_rate(
      files, seconds / 2, [&](const std::string& f) { graft::decode_image_file(f, scaled); });
  graft::Image small = graft::decode_image_file(files[0], scaled);
  const double sx = double(small.width) / sample.width, sy = double(small.height) / sample.height;
  const graft::Box small_box{box.x * sx, box.y * sy, box.w * sx, box.h * sy};
  const double resample_rate = best_rate(files, seconds / 2, [&](const std::string&) {
    graft::resample(small, small_box, int(p.size), int(p.size), out.data());
  });
  std::printf("images: %zu JPEG files from %s\n", files.size(), dir.c_str());
  std::printf("graft decode+resize+crop+normalise: %.1f images/s/core (W4 target >= 400)\n",
              graft_rate);
  std::printf(
      "  stages: full-size decode %.0f/s; decode at %dx%d (DCT scale) %.0f/s; resample "
      "%.0f/s\n",
      decode_rate, small.width, small.height, scaled_rate, resample_rate);
  // The loader feeding a trainer: batches of 32 from 2 worker threads.
  graft::Dataset d;
  d.num_classes = 1;
  for (const std::string& f : files) d.samples.push_back({f, {0}, f});
  graft::LoaderOptions lo;
  lo.workers = 2;
  graft::Loader loader(d, lo);
  const int epochs = 8;
  const auto loader_start = Clock::now();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (loader.next()) {
    }
  }
  const double loader_rate = double(files.size()) * epochs /
                             std::chrono::duration<double>(Clock::now() - loader_start).count();
  std::printf("graft Loader, 2 workers, batch 32:  %.1f images/s (all cores)\n", loader_rate);
  if (pil) {
    std::string line = run("/usr/bin/python3 " + script() + " time " + dir + " --seconds " +
                           std::to_string(seconds));
    double pil_rate = 0;
    if (std::sscanf(line.c_str(), "pil_images_per_second %lf", &pil_rate) == 1 && pil_rate > 0) {
      std::printf("PIL + torchvision (same run):       %.1f images/s/core\n", pil_rate);
      std::printf("ratio graft / PIL: %.2fx\n", graft_rate / pil_rate);
    } else {
      std::printf("PIL + torchvision: not measured (%s)\n", line.c_str());
    }
  }
  if (!made.empty()) fs::remove_all(made);
  return 0;
}
