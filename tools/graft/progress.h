// Progress on the terminal: a live bar redrawn in place when stderr is a
// terminal, otherwise nothing until the caller prints a plain line.
#pragma once

#include <chrono>
#include <string>

namespace graft::cli {

class ProgressBar {
 public:
  ProgressBar();
  bool live() const { return live_; }
  // Redraws "label [#####.....] done/total  extra" (at most 10 times a second).
  void update(const std::string& label, int64_t done, int64_t total, const std::string& extra = "");
  // Clears the bar's line so a plain line can be printed.
  void clear();

 private:
  bool live_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace graft::cli
