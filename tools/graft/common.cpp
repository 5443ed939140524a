#include "commands.h"

namespace graft::cli {

ShapeMap parse_input_shapes(const Graph& graph, const std::vector<std::string>& specs) {
  ShapeMap shapes;
  for (const std::string& spec : specs) {
    auto eq = spec.rfind('=');
    std::string name = eq == std::string::npos ? "" : spec.substr(0, eq);
    std::string dims = eq == std::string::npos ? spec : spec.substr(eq + 1);
    if (name.empty()) {
      GRAFT_CHECK(!graph.inputs.empty(), kInvalidArgument, "the model has no inputs");
      name = graph.inputs[0].name;
    }
    Shape shape;
    size_t pos = 0;
    while (pos <= dims.size() && !dims.empty()) {
      size_t x = dims.find('x', pos);
      std::string d = dims.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
      GRAFT_CHECK(!d.empty() && d.find_first_not_of("0123456789") == std::string::npos &&
                      d.size() < 12,
                  kInvalidArgument, "--input-shape '{}': '{}' is not a dimension", spec, d);
      shape.push_back(std::stoll(d));
      if (x == std::string::npos) break;
      pos = x + 1;
    }
    shapes[name] = shape;
  }
  return shapes;
}

}  // namespace graft::cli
