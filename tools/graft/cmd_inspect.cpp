// graft inspect MODEL: inputs, outputs, every node with its output shapes and
// parameter count, totals, and suggested cut points for transfer learning.
#include <iostream>

#include "commands.h"
#include "graft/surgery.h"

namespace graft::cli {

namespace {

std::string decl_str(const ValueDecl& d) {
  std::string s = fmt::format("{} {}", d.name, dtype_name(d.dtype));
  if (!d.shape) return s + " [rank unknown]";
  std::string dims;
  for (const Dim& x : *d.shape)
    dims += (dims.empty() ? "" : "x") + (x.value >= 0 ? std::to_string(x.value) : x.symbol.empty() ? "?" : x.symbol);
  return s + " [" + (dims.empty() ? "scalar" : dims) + "]";
}

int inspect(const std::string& path, const std::vector<std::string>& shape_specs) {
  Graph g = load_model(path);
  ShapeMap given = parse_input_shapes(g, shape_specs);
  ShapeMap shapes = resolve_input_shapes(g, given, /*symbolic_default=*/1);
  auto infos = infer_shapes(g, shapes);

  std::cout << fmt::format("model: {}  (graph '{}', opset {})\n", path, g.name, g.opset);
  std::cout << "inputs:\n";
  for (const ValueDecl& d : g.inputs)
    std::cout << fmt::format("  {}  -> used as {}\n", decl_str(d), shape_str(shapes.at(d.name)));
  std::cout << "outputs:\n";
  for (const ValueDecl& d : g.outputs)
    std::cout << fmt::format("  {}  -> {}\n", decl_str(d), shape_str(infos.at(d.name).shape));

  std::cout << fmt::format("\n{:<4} {:<40} {:<20} {:>10}  {}\n", "#", "node", "op", "params",
                           "outputs");
  int64_t total_params = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    int64_t params = 0;
    for (const std::string& p : parameters_of(g, n)) params += g.initializers.at(p).numel();
    total_params += params;
    std::string outs;
    for (const std::string& o : n.outputs)
      if (!o.empty())
        outs += fmt::format("{}{} [{}]", outs.empty() ? "" : ", ", o, shape_str(infos.at(o).shape));
    std::cout << fmt::format("{:<4} {:<40} {:<20} {:>10}  {}\n", i, n.name, n.op_type, params, outs);
  }
  std::cout << fmt::format("\ntotals: {} nodes, {} parameters, {} initializers\n", g.nodes.size(),
                           total_params, g.initializers.size());
  auto cuts = suggest_cut_points(g);
  if (cuts.empty()) {
    std::cout << "suggested cut points: none found (no global pooling before a final classifier)\n";
  } else {
    std::cout << "suggested cut points (features before the final classifier):\n";
    for (const std::string& c : cuts)
      std::cout << fmt::format("  {}  [{}]\n", c, shape_str(infos.at(c).shape));
  }
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's inputs, nodes, shapes and cut points");
  auto path = std::make_shared<std::string>();
  auto shapes = std::make_shared<std::vector<std::string>>();
  cmd->add_option("MODEL", *path, "Model file (.onnx)")->required();
  cmd->add_option("--input-shape", *shapes,
                  "Concrete input shape, NAME=1x3x224x224 (symbolic dimensions default to 1)");
  cmd->callback([&action, path, shapes] { action = [path, shapes] { return inspect(*path, *shapes); }; });
}

}  // namespace graft::cli
