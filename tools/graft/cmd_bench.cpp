// graft bench MODEL: median milliseconds per image for inference, a
// frozen-trunk training step (new head trains) or a full training step, and
// optionally the per-op profile.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <random>

#include "commands.h"
#include "graft/backend.h"
#include "graft/loss.h"
#include "graft/optim.h"
#include "graft/surgery.h"

namespace graft::cli {

namespace {

struct BenchArgs {
  std::string model;
  int64_t batch = 1;
  std::string train = "none";  // none, head, full
  int threads = 0;
  int iters = 10, warmup = 3;
  bool profile = false;
  bool by_node = false;
};

int bench(const BenchArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  Graph g = load_model(a.model);
  GRAFT_CHECK(g.inputs.size() == 1, kUnsupported, "bench takes models with one input");
  const std::string input = g.inputs[0].name;
  const int64_t classes = 10;
  if (a.train != "none") {
    GRAFT_CHECK(a.train == "head" || a.train == "full", kInvalidArgument, "--train is none, head or full");
    // The last pooling before the classifier; a trunk without a classifier
    // (no cut point suggested) is used whole.
    std::vector<std::string> cuts = suggest_cut_points(g);
    std::string cut = cuts.empty() ? g.outputs.at(0).name : cuts[0];
    g = extract(g, {input}, {cut});
    if (a.train == "full") set_trainable(g, ".", true);
    attach_head(g, cut, HeadOptions{classes});
  }
  ShapeMap shapes = resolve_input_shapes(g, {}, a.batch);
  Tensor x(DType::kF32, shapes.at(input));
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  std::vector<int64_t> labels(a.batch);
  for (int64_t i = 0; i < a.batch; ++i) labels[i] = i % classes;

  Session s(std::move(g));
  const std::string output = s.graph().outputs.at(0).name;
  auto optimizer = make_adam({});
  s.set_training(a.train != "none");
  auto step = [&] {
    if (a.train == "none") {
      s.run({{input, x}});
      return;
    }
    s.zero_grad();
    LossResult l = softmax_cross_entropy(s.run({{input, x}}).at(output), labels);
    s.backward({{output, l.grad}});
    optimizer->step(s.parameters(), 1e-4f);
  };
  for (int i = 0; i < a.warmup; ++i) step();
  s.set_profiling(a.profile || a.by_node, a.by_node);
  std::vector<double> ms;
  std::map<std::string, std::vector<double>> op_ms;  // per op, its time in each run
  std::map<std::string, int64_t> op_calls;           // and its calls per run
  for (int i = 0; i < a.iters; ++i) {
    s.clear_profile();
    auto start = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    for (const auto& [op, t] : s.profile()) {
      op_ms[op].resize(a.iters, 0.0);  // 0 in a run where the op did not run
      op_ms[op][i] = 1e3 * t.seconds;
      op_calls[op] = t.calls;
    }
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::cout << fmt::format("{}: {} batch {}: median {:.2f} ms per batch, {:.3f} ms per image ({} runs)\n", a.model,
                           a.train == "none" ? "inference" : a.train + " training step", a.batch, median,
                           median / static_cast<double>(a.batch), a.iters);
  if (a.profile || a.by_node) {
    // Each op's median over the runs, as the headline: one slow run does not
    // inflate it.
    std::vector<std::pair<std::string, double>> ops;
    double total = 0;
    size_t width = 28;
    for (auto& [op, runs] : op_ms) {
      std::sort(runs.begin(), runs.end());
      ops.emplace_back(op, runs[runs.size() / 2]);
      total += ops.back().second;
      width = std::max(width, op.size());
    }
    std::sort(ops.begin(), ops.end(), [](const auto& p, const auto& q) { return p.second > q.second; });
    std::cout << fmt::format("\n{:<{}} {:>10} {:>7} {:>8}\n", a.by_node ? "op and node" : "op", width,
                             "ms/run", "share", "calls");
    for (const auto& [op, median_ms] : ops)
      std::cout << fmt::format("{:<{}} {:>10.3f} {:>6.1f}% {:>8}\n", op, width, median_ms,
                               100 * median_ms / std::max(total, 1e-12), op_calls.at(op));
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("bench", "Time inference or a training step; --profile shows where the time goes");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("MODEL", a->model, "Model")->required();
  cmd->add_option("--batch", a->batch)->capture_default_str();
  cmd->add_option("--train", a->train, "none (inference), head (frozen trunk, new head) or full")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("--iters", a->iters)->capture_default_str();
  cmd->add_option("--warmup", a->warmup)->capture_default_str();
  cmd->add_flag("--profile", a->profile, "Print the time per op type");
  cmd->add_flag("--by-node", a->by_node, "Print the time per node (implies --profile)");
  cmd->callback([&action, a] { action = [a] { return bench(*a); }; });
}

}  // namespace graft::cli
