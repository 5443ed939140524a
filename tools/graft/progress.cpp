#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace graft::cli {

ProgressBar::ProgressBar() : live_(::isatty(STDERR_FILENO) != 0) {}

void ProgressBar::update(const std::string& label, int64_t done, int64_t total, const std::string& extra) {
  if (!live_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const int width = 30;
  int filled = total > 0 ? static_cast<int>(width * done / total) : 0;
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld  %s", label.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total), extra.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (live_ && drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

}  // namespace graft::cli
