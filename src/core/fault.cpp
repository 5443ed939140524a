#include "core/fault.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <atomic>

namespace graft {

namespace {

struct ArmedPoint {
  std::string name;  // empty: nothing armed
  long long at = 1;
  std::atomic<long long> passes{0};
};

// Parsed once from GRAFT_FAULT_KILL_AT; a malformed value aborts so that a
// test's typo cannot pass as "no crash happened".
ArmedPoint& armed() {
  static ArmedPoint* point = [] {
    auto* p = new ArmedPoint;  // never freed: points may be passed during exit
    const char* spec = std::getenv("GRAFT_FAULT_KILL_AT");
    if (!spec || !*spec) return p;
    std::string s = spec;
    if (size_t at = s.rfind('@'); at != std::string::npos) {
      char* end = nullptr;
      p->at = std::strtoll(s.c_str() + at + 1, &end, 10);
      if (*end != '\0' || p->at < 1) {
        std::fprintf(stderr, "GRAFT_FAULT_KILL_AT=%s: the count after '@' must be a positive integer\n", spec);
        std::abort();
      }
      s.resize(at);
    }
    p->name = s;
    return p;
  }();
  return *point;
}

}  // namespace

void fault_point(std::string_view prefix, std::string_view name) {
  ArmedPoint& p = armed();
  if (p.name.empty() || p.name.size() != prefix.size() + name.size()) return;
  if (std::string_view(p.name).substr(0, prefix.size()) != prefix ||
      std::string_view(p.name).substr(prefix.size()) != name)
    return;
  if (p.passes.fetch_add(1) + 1 == p.at) std::raise(SIGKILL);
}

}  // namespace graft
