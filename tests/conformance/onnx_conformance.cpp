// Runs the ONNX backend test cases (Debian's libonnx-testdata) through graft:
// every case whose ops graft supports must reproduce the recorded outputs.
// A case is skipped only when loading or preparing it fails with
// kUnsupported; the reasons are listed so nothing is skipped silently.
//
//   onnx_conformance DATA_DIR [--filter TEXT] [--verbose]
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

#include "graft/onnx.h"
#include "graft/session.h"

namespace fs = std::filesystem;
using namespace graft;

namespace {

enum class Outcome { kPassed, kFailed, kSkipped };

struct Result {
  Outcome outcome;
  std::string detail;
};

template <typename T>
double as_double(T v) {
  if constexpr (std::is_same_v<T, Half>) return half_to_float(v);
  else return static_cast<double>(v);
}

// Empty string when equal within the backend tests' tolerance (rtol 1e-3,
// atol 1e-7 for floats; exact for integers and bools).
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype())
    return fmt::format("dtype {} instead of {}", dtype_name(got.dtype()), dtype_name(want.dtype()));
  if (got.shape() != want.shape())
    return fmt::format("shape {} instead of {}", shape_str(got.shape()), shape_str(want.shape()));
  std::string err;
  visit_dtype(got.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = got.data<T>();
    const T* w = want.data<T>();
    for (int64_t i = 0; i < got.numel() && err.empty(); ++i) {
      double a = as_double(g[i]), b = as_double(w[i]);
      bool ok = is_floating(got.dtype())
                    ? (std::isnan(a) && std::isnan(b)) || a == b || std::abs(a - b) <= 1e-7 + 1e-3 * std::abs(b)
                    : a == b;
      if (!ok) err = fmt::format("element {} is {} instead of {}", i, a, b);
    }
  });
  return err;
}

Result run_case(const fs::path& dir) {
  Graph graph;
  try {
    graph = load_onnx((dir / "model.onnx").string());
  } catch (const Error& e) {
    return {e.kind() == ErrorKind::kUnsupported ? Outcome::kSkipped : Outcome::kFailed, e.what()};
  }
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(entry.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {Outcome::kFailed, "no test_data_set_* folder"};
  Session session(graph);
  for (const fs::path& set : sets) {
    TensorMap inputs;
    for (size_t k = 0;; ++k) {
      fs::path p = set / fmt::format("input_{}.pb", k);
      if (!fs::exists(p)) break;
      std::string name;
      Tensor t = load_onnx_tensor(p.string(), &name);
      if (!graph.find_input(name)) {
        if (k >= graph.inputs.size()) return {Outcome::kFailed, "more input files than inputs"};
        name = graph.inputs[k].name;
      }
      inputs[name] = t;
    }
    TensorMap outputs;
    try {
      outputs = session.run(inputs);
    } catch (const Error& e) {
      return {e.kind() == ErrorKind::kUnsupported ? Outcome::kSkipped : Outcome::kFailed, e.what()};
    }
    for (size_t k = 0; k < graph.outputs.size(); ++k) {
      fs::path p = set / fmt::format("output_{}.pb", k);
      if (!fs::exists(p)) continue;
      Tensor want = load_onnx_tensor(p.string());
      std::string err = compare(outputs.at(graph.outputs[k].name), want);
      if (!err.empty())
        return {Outcome::kFailed, fmt::format("{}: output '{}': {}", set.filename().string(),
                                              graph.outputs[k].name, err)};
    }
  }
  return {Outcome::kPassed, ""};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: onnx_conformance DATA_DIR [--filter TEXT] [--verbose]\n";
    return 2;
  }
  fs::path root = argv[1];
  std::string filter;
  bool verbose = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else if (a == "--verbose") verbose = true;
  }
  int passed = 0, failed = 0, skipped = 0;
  std::map<std::string, int> skip_reasons;
  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator"}) {
    fs::path dir = root / suite;
    if (!fs::exists(dir)) {
      std::cerr << dir << " is missing: install Debian's libonnx-testdata\n";
      return 2;
    }
    std::vector<fs::path> cases;
    for (const auto& entry : fs::directory_iterator(dir)) cases.push_back(entry.path());
    std::sort(cases.begin(), cases.end());
    for (const fs::path& c : cases) {
      std::string id = std::string(suite) + "/" + c.filename().string();
      if (!filter.empty() && id.find(filter) == std::string::npos) continue;
      Result r;
      try {
        r = run_case(c);
      } catch (const Error& e) {
        r = {Outcome::kFailed, e.what()};
      }
      if (r.outcome == Outcome::kPassed) {
        ++passed;
        if (verbose) std::cout << "PASS " << id << "\n";
      } else if (r.outcome == Outcome::kFailed) {
        ++failed;
        std::cout << "FAIL " << id << ": " << r.detail << "\n";
      } else {
        ++skipped;
        // Group by the reason without the file and node names.
        std::string reason = r.detail.substr(r.detail.rfind(": ") == std::string::npos ? 0 : r.detail.rfind(": ") + 2);
        skip_reasons[reason]++;
        if (verbose) std::cout << "SKIP " << id << ": " << r.detail << "\n";
      }
    }
  }
  std::cout << "\nskipped cases by reason:\n";
  for (const auto& [reason, n] : skip_reasons) std::cout << fmt::format("  {:4} {}\n", n, reason);
  std::cout << fmt::format("\n{} passed, {} failed, {} skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
