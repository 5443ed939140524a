#include "graft/session.h"

#include <cstring>

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

namespace {

// Runs one node's reference kernel on concrete tensors.
std::vector<Tensor> run_node(const Node& node, int opset, const std::vector<const Tensor*>& inputs,
                             const std::vector<ValueInfo>& out_infos) {
  const ops::OpDef* def = ops::registry().find(node.op_type);
  GRAFT_ASSERT(def != nullptr);
  std::vector<Tensor> outs(node.outputs.size());
  std::vector<Tensor*> out_ptrs(node.outputs.size(), nullptr);
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    if (node.outputs[i].empty()) continue;
    outs[i] = Tensor(out_infos[i].dtype, out_infos[i].shape);
    out_ptrs[i] = &outs[i];
  }
  ops::KernelContext ctx{node, opset, inputs, out_ptrs};
  def->compute(ctx);
  return outs;
}

}  // namespace

std::map<std::string, ValueInfo> infer_shapes(const Graph& graph, const ShapeMap& input_shapes,
                                              const TensorMap& known_inputs) {
  std::map<std::string, ValueInfo> infos;
  for (const ValueDecl& in : graph.inputs) {
    auto it = input_shapes.find(in.name);
    GRAFT_CHECK(it != input_shapes.end(), kInvalidArgument, "no shape given for input '{}'",
                in.name);
    auto known = known_inputs.find(in.name);
    infos[in.name] = ValueInfo{in.dtype, it->second,
                               known == known_inputs.end() ? Tensor() : known->second};
  }
  for (const auto& [name, t] : graph.initializers) infos[name] = ValueInfo{t.dtype(), t.shape(), t};

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
        std::vector<Tensor> values = run_node(node, graph.opset, tensors, outs);
        for (size_t i = 0; i < outs.size(); ++i) outs[i].constant = values[i];
      }
      for (size_t i = 0; i < outs.size(); ++i)
        if (!node.outputs[i].empty()) infos[node.outputs[i]] = std::move(outs[i]);
    });
  }
  return infos;
}

Session::Session(Graph graph) : graph_(std::move(graph)) {
  graph_.sort_topologically();
  validate_ops(graph_);
}

namespace {

// Graph inputs small enough to be shape arguments (sizes, scales, axes).
TensorMap small_inputs(const Graph& graph, const TensorMap& inputs) {
  TensorMap out;
  for (const ValueDecl& decl : graph.inputs) {
    const Tensor& t = inputs.at(decl.name);
    if (t.rank() <= 1 && t.numel() <= 64) out[decl.name] = t;
  }
  return out;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

}  // namespace

bool Session::prepared_for(const ShapeMap& shapes, const TensorMap& inputs) const {
  if (infos_.empty() || shapes != prepared_for_) return false;
  for (const auto& [name, t] : value_inputs_)
    if (!same_values(t, inputs.at(name))) return false;
  return true;
}

void Session::prepare(const ShapeMap& shapes, const TensorMap& inputs) {
  infos_.clear();
  // Shapes usually follow from input shapes alone. When an op needs the value
  // of a graph input to know its output shape, infer again with the small
  // inputs' values known, and redo it whenever those values change.
  try {
    if (value_inputs_.empty()) infos_ = infer_shapes(graph_, shapes);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported || small_inputs(graph_, inputs).empty()) throw;
  }
  if (infos_.empty()) {
    value_inputs_ = small_inputs(graph_, inputs);
    infos_ = infer_shapes(graph_, shapes, value_inputs_);
  }
  prepared_for_ = shapes;
  last_use_.clear();
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    for (const std::string& in : graph_.nodes[i].inputs) last_use_[in] = static_cast<int>(i);
  for (const ValueDecl& out : graph_.outputs) last_use_[out.name] = INT32_MAX;
}

TensorMap Session::run(const TensorMap& inputs) {
  ShapeMap shapes;
  for (const ValueDecl& decl : graph_.inputs) {
    auto it = inputs.find(decl.name);
    GRAFT_CHECK(it != inputs.end(), kInvalidArgument, "input '{}' was not given", decl.name);
    const Tensor& t = it->second;
    GRAFT_CHECK(t.dtype() == decl.dtype, kInvalidArgument, "input '{}' should be {}, got {}",
                decl.name, dtype_name(decl.dtype), dtype_name(t.dtype()));
    if (decl.shape) {
      bool fits = decl.shape->size() == t.shape().size();
      for (size_t d = 0; fits && d < t.shape().size(); ++d)
        fits = (*decl.shape)[d].value < 0 || (*decl.shape)[d].value == t.shape()[d];
      std::string declared;
      for (const Dim& d : *decl.shape)
        declared += (declared.empty() ? "" : "x") + (d.value >= 0 ? std::to_string(d.value)
                                                                   : (d.symbol.empty() ? "?" : d.symbol));
      GRAFT_CHECK(fits, kInvalidArgument, "input '{}' has shape {}, the model declares {}",
                  decl.name, shape_str(t.shape()), declared.empty() ? "scalar" : declared);
    }
    shapes[decl.name] = t.shape();
  }
  for (const auto& [name, t] : inputs)
    GRAFT_CHECK(graph_.find_input(name), kInvalidArgument, "the model has no input named '{}'",
                name);
  if (!prepared_for(shapes, inputs)) prepare(shapes, inputs);

  TensorMap values;
  for (const auto& [name, info] : infos_)
    if (info.constant.defined()) values[name] = info.constant;
  for (const auto& [name, t] : inputs) values[name] = t;

  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& node = graph_.nodes[i];
    bool done = true;
    for (const std::string& o : node.outputs) done = done && (o.empty() || values.count(o));
    if (done) continue;  // folded ahead
    with_context(node.describe(), [&] {
      std::vector<const Tensor*> in;
      for (const std::string& name : node.inputs) in.push_back(name.empty() ? nullptr : &values.at(name));
      std::vector<ValueInfo> out_infos;
      for (const std::string& o : node.outputs) out_infos.push_back(o.empty() ? ValueInfo{} : infos_.at(o));
      std::vector<Tensor> outs = run_node(node, graph_.opset, in, out_infos);
      for (size_t k = 0; k < outs.size(); ++k)
        if (!node.outputs[k].empty()) values[node.outputs[k]] = std::move(outs[k]);
    });
    // Release what no later node reads.
    for (const std::string& name : node.inputs) {
      auto it = last_use_.find(name);
      if (!name.empty() && it != last_use_.end() && it->second == static_cast<int>(i) &&
          !infos_.at(name).constant.defined())
        values.erase(name);
    }
  }
  TensorMap outputs;
  for (const ValueDecl& out : graph_.outputs) outputs[out.name] = values.at(out.name);
  return outputs;
}

}  // namespace graft
