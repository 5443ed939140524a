#include "commands.h"

#include "graft/onnx.h"
#include "graft/tfjs.h"

namespace graft::cli {

Graph load_model(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return load_tfjs(path);
  return load_onnx(path);
}

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
