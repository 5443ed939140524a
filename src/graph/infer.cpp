#include "graft/session.h"

#include "ops/op.h"

namespace graft {

void validate_ops(const Graph& graph) {
  for (const Node& n : graph.nodes) ops::check_node(n, graph.opset);
}

ShapeMap resolve_input_shapes(const Graph& graph, const ShapeMap& given, int64_t symbolic_default) {
  ShapeMap shapes;
  for (const auto& [name, shape] : given)
    GRAFT_CHECK(graph.find_input(name), kNotFound, "the model has no input named '{}'", name);
  for (const ValueDecl& in : graph.inputs) {
    auto it = given.find(in.name);
    if (it != given.end()) {
      shapes[in.name] = it->second;
      continue;
    }
    GRAFT_CHECK(in.shape.has_value(), kInvalidArgument,
                "input '{}' has no declared shape: give one (e.g. --input-shape {}=1x3x224x224)",
                in.name, in.name);
    Shape s;
    for (const Dim& d : *in.shape) {
      int64_t v = d.value >= 0 ? d.value : symbolic_default;
      GRAFT_CHECK(v >= 0, kInvalidArgument,
                  "input '{}' has a symbolic dimension '{}': give its shape", in.name, d.symbol);
      s.push_back(v);
    }
    shapes[in.name] = s;
  }
  return shapes;
}

std::map<std::string, ValueInfo> infer_shapes(const Graph& graph, const ShapeMap& input_shapes,
                                              const TensorMap& known_inputs,
                                              const std::set<std::string>& variables) {
  std::map<std::string, ValueInfo> infos;
  for (const ValueDecl& in : graph.inputs) {
    auto it = input_shapes.find(in.name);
    GRAFT_CHECK(it != input_shapes.end(), kInvalidArgument, "no shape given for input '{}'",
                in.name);
    auto known = known_inputs.find(in.name);
    infos[in.name] = ValueInfo{in.dtype, it->second,
                               known == known_inputs.end() ? Tensor() : known->second};
  }
  for (const auto& [name, t] : graph.initializers)
    infos[name] = ValueInfo{t.dtype(), t.shape(), variables.count(name) ? Tensor() : t};

  for (const Node& node : graph.nodes) {
    with_context(node.describe(), [&] {
      const ops::OpDef* def = ops::registry().find(node.op_type);
      GRAFT_CHECK(def != nullptr, kUnsupported, "op '{}' is not supported by graft", node.op_type);
      std::vector<const ValueInfo*> in;
      bool all_constant = true;
      for (const std::string& name : node.inputs) {
        if (name.empty()) {
          in.push_back(nullptr);
          continue;
        }
        auto it = infos.find(name);
        GRAFT_CHECK(it != infos.end(), kCorruption, "input '{}' is not defined before this node",
                    name);
        in.push_back(&it->second);
        all_constant = all_constant && it->second.constant.defined();
      }
      ops::InferContext ctx(node, graph.opset, in);
      def->infer(ctx);
      std::vector<ValueInfo>& outs = ctx.outputs();
      // Fold nodes whose inputs are all known: shape arithmetic (Shape ->
      // Gather -> Concat -> Reshape) then gives concrete shapes downstream.
      bool folded = true;
      for (size_t i = 0; i < outs.size(); ++i)
        folded = folded && (node.outputs[i].empty() || outs[i].constant.defined());
      if (all_constant && !folded) {
        std::vector<const Tensor*> tensors;
        for (const ValueInfo* v : in) tensors.push_back(v ? &v->constant : nullptr);
        std::vector<Tensor> values = ops::run_node(node, graph.opset, tensors, outs);
        for (size_t i = 0; i < outs.size(); ++i) outs[i].constant = values[i];
      }
      for (size_t i = 0; i < outs.size(); ++i)
        if (!node.outputs[i].empty()) infos[node.outputs[i]] = std::move(outs[i]);
    });
  }
  return infos;
}

}  // namespace graft
