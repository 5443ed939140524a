#include "graft/surgery.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <regex>

#include "graft/session.h"
#include "ops/op.h"

namespace graft {

namespace {

bool is_value(const Graph& g, const std::string& name) {
  return g.find_input(name) || g.is_initializer(name) || g.producer(name);
}

// Shapes of every value with symbolic dimensions taken as 1.
std::map<std::string, ValueInfo> default_infos(const Graph& g) {
  return infer_shapes(g, resolve_input_shapes(g, {}, 1));
}

// A declaration for an intermediate value: its inferred dtype and shape,
// with the first dimension made the symbolic batch.
ValueDecl declare(const std::string& name, const ValueInfo& info) {
  ValueDecl d{name, info.dtype, std::vector<Dim>{}};
  for (size_t i = 0; i < info.shape.size(); ++i)
    d.shape->push_back(i == 0 ? Dim{-1, "batch"} : Dim{info.shape[i], ""});
  return d;
}

}  // namespace

std::string resolve_value(const Graph& graph, const std::string& name) {
  if (is_value(graph, name)) return name;
  if (const Node* n = graph.find_node(name)) return n->outputs.at(0);
  std::vector<std::string> candidates = graph.value_names();
  for (const Node& n : graph.nodes) candidates.push_back(n.name);
  std::string hint;
  for (const std::string& c : nearest_names(name, candidates)) hint += (hint.empty() ? "" : ", ") + c;
  fail(ErrorKind::kNotFound, "no node or value named '{}' in the model (nearest: {})", name, hint);
}

Graph extract(const Graph& graph, const std::vector<std::string>& inputs,
              const std::vector<std::string>& outputs) {
  std::set<std::string> stop(inputs.begin(), inputs.end());
  for (const std::string& name : inputs)
    GRAFT_CHECK(is_value(graph, name), kNotFound, "no value named '{}' to extract from", name);
  // Walk back from the outputs to the nodes they need.
  std::set<const Node*> needed;
  std::set<std::string> used_initializers;
  std::vector<std::string> todo(outputs.begin(), outputs.end());
  while (!todo.empty()) {
    std::string v = todo.back();
    todo.pop_back();
    if (v.empty() || stop.count(v)) continue;
    if (graph.is_initializer(v)) {
      used_initializers.insert(v);
      continue;
    }
    GRAFT_CHECK(!graph.find_input(v), kInvalidArgument,
                "the outputs need the model input '{}', which is not among the extracted inputs", v);
    const Node* n = graph.producer(v);
    GRAFT_CHECK(n != nullptr, kNotFound, "no value named '{}' to extract", v);
    if (!needed.insert(n).second) continue;
    for (const std::string& in : n->inputs) todo.push_back(in);
  }
  std::map<std::string, ValueInfo> infos;
  auto info_of = [&](const std::string& name) -> const ValueInfo& {
    if (infos.empty()) infos = default_infos(graph);
    return infos.at(name);
  };

  Graph out;
  out.name = graph.name;
  out.opset = graph.opset;
  out.metadata = graph.metadata;
  for (const Node& n : graph.nodes)
    if (needed.count(&n)) out.nodes.push_back(n);
  for (const std::string& name : used_initializers) {
    out.initializers[name] = graph.initializers.at(name);
    if (graph.trainable.count(name)) out.trainable.insert(name);
  }
  for (const std::string& name : inputs) {
    if (const ValueDecl* d = graph.find_input(name)) out.inputs.push_back(*d);
    else out.inputs.push_back(declare(name, info_of(name)));
  }
  for (const std::string& name : outputs) {
    auto it = std::find_if(graph.outputs.begin(), graph.outputs.end(),
                           [&](const ValueDecl& d) { return d.name == name; });
    out.outputs.push_back(it != graph.outputs.end() && it->shape ? *it : declare(name, info_of(name)));
  }
  out.sort_topologically();
  return out;
}

int set_trainable(Graph& graph, const std::string& pattern, bool trainable) {
  std::regex re;
  try {
    re = std::regex(pattern);
  } catch (const std::regex_error& e) {
    fail(ErrorKind::kInvalidArgument, "'{}' is not a valid pattern: {}", pattern, e.what());
  }
  // Only parameters: clip bounds, shapes and running statistics never train.
  std::set<std::string> parameters;
  for (const Node& n : graph.nodes)
    for (const std::string& p : parameters_of(graph, n)) parameters.insert(p);
  int matched = 0;
  for (const auto& [name, t] : graph.initializers) {
    if (!parameters.count(name) || !std::regex_search(name, re)) continue;
    ++matched;
    if (trainable) graph.trainable.insert(name);
    else graph.trainable.erase(name);
  }
  return matched;
}

namespace {

bool is_weight_op(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

}  // namespace

std::vector<std::string> parameters_of(const Graph& g, const Node& n) {
  std::vector<std::string> out;
  const ops::OpDef* def = ops::registry().find(n.op_type);
  if (!def) return out;
  for (size_t k = 0; k < n.inputs.size(); ++k)
    if (def->differentiable(static_cast<int>(k)) && g.is_initializer(n.inputs[k]) &&
        is_floating(g.initializers.at(n.inputs[k]).dtype()))
      out.push_back(n.inputs[k]);
  return out;
}

std::vector<std::vector<std::string>> find_blocks(const Graph& graph) {
  const int n = static_cast<int>(graph.nodes.size());
  // Last reader of each activation (graph outputs live to the end).
  std::map<std::string, int> produced_at, last_read;
  for (const ValueDecl& in : graph.inputs) produced_at[in.name] = -1;
  for (int i = 0; i < n; ++i) {
    for (const std::string& in : graph.nodes[i].inputs)
      if (!in.empty() && !graph.is_initializer(in)) last_read[in] = i;
    for (const std::string& o : graph.nodes[i].outputs)
      if (!o.empty()) produced_at[o] = i;
  }
  for (const ValueDecl& out : graph.outputs) last_read[out.name] = n;
  // After node i, how many activations are alive? One means a boundary.
  std::vector<int> alive(n, 0);
  for (const auto& [v, last] : last_read) {
    auto p = produced_at.find(v);
    if (p == produced_at.end()) continue;
    for (int i = std::max(p->second, 0); i < std::min(last, n); ++i) alive[i]++;
  }
  std::vector<std::vector<std::string>> blocks;
  std::vector<std::string> segment;
  bool segment_has_weights = false;
  auto close_segment = [&] {
    if (segment.empty()) return;
    // A segment without a conv or matmul joins the block before it.
    if (segment_has_weights || blocks.empty()) blocks.push_back(segment);
    else blocks.back().insert(blocks.back().end(), segment.begin(), segment.end());
    segment.clear();
    segment_has_weights = false;
  };
  for (int i = 0; i < n; ++i) {
    const Node& node = graph.nodes[i];
    segment.push_back(node.name);
    segment_has_weights = segment_has_weights ||
                          (is_weight_op(node.op_type) && !parameters_of(graph, node).empty());
    if (alive[i] <= 1) close_segment();
  }
  close_segment();
  // A leading block without weights (e.g. input normalisation) joins the next.
  if (blocks.size() > 1) {
    bool first_has_weights = false;
    for (const std::string& name : blocks[0])
      first_has_weights = first_has_weights || is_weight_op(graph.find_node(name)->op_type);
    if (!first_has_weights) {
      blocks[1].insert(blocks[1].begin(), blocks[0].begin(), blocks[0].end());
      blocks.erase(blocks.begin());
    }
  }
  return blocks;
}

std::vector<std::string> unfreeze_last_blocks(Graph& graph, int k) {
  GRAFT_CHECK(k >= 0, kInvalidArgument, "cannot unfreeze {} blocks", k);
  auto blocks = find_blocks(graph);
  GRAFT_CHECK(k <= static_cast<int>(blocks.size()), kInvalidArgument,
              "cannot unfreeze {} blocks: the model has {}", k, blocks.size());
  std::vector<std::string> added;
  for (size_t b = blocks.size() - k; b < blocks.size(); ++b)
    for (const std::string& name : blocks[b])
      for (const std::string& p : parameters_of(graph, *graph.find_node(name)))
        if (graph.trainable.insert(p).second) added.push_back(p);
  return added;
}

namespace {

// Uniform values in [-bound, bound) from a seeded 64-bit generator, with the
// same bits on every platform (std distributions are not portable).
Tensor uniform(Shape shape, double bound, std::mt19937_64& rng) {
  Tensor t(DType::kF32, std::move(shape));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
    p[i] = static_cast<float>((2 * u - 1) * bound);
  }
  return t;
}

class HeadBuilder {
 public:
  HeadBuilder(Graph& g, const HeadOptions& o) : g_(g), o_(o), rng_(o.seed) {}

  std::string add(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                  std::map<std::string, Attribute> attrs = {}, std::string output = "") {
    Node n;
    n.name = "head/" + name;
    n.op_type = op;
    n.inputs = std::move(inputs);
    n.outputs = {output.empty() ? n.name : output};
    n.attrs = std::move(attrs);
    GRAFT_CHECK(!g_.find_node(n.name) && !g_.producer(n.outputs[0]), kInvalidArgument,
                "the model already has a node or value named '{}'", n.outputs[0]);
    g_.nodes.push_back(n);
    return n.outputs[0];
  }

  std::string constant(const std::string& name, Tensor value) {
    std::string full = "head/" + name;
    g_.initializers[full] = std::move(value);
    return full;
  }

  // A trainable weight [out, in, ...kernel] and bias [out].
  std::pair<std::string, std::string> weights(const std::string& name, Shape w_shape) {
    int64_t fan_out = w_shape[0], fan_in = w_shape[1];
    double bound = o_.init == HeadOptions::Init::kXavierUniform
                       ? std::sqrt(6.0 / static_cast<double>(fan_in + fan_out))
                       : 1.0 / std::sqrt(static_cast<double>(fan_in));
    std::string w = constant(name + "/weight", uniform(w_shape, bound, rng_));
    std::string b = constant(name + "/bias", o_.init == HeadOptions::Init::kXavierUniform
                                                 ? Tensor(DType::kF32, {fan_out})
                                                 : uniform({fan_out}, bound, rng_));
    g_.trainable.insert(w);
    g_.trainable.insert(b);
    return {w, b};
  }

  std::string dropout(const std::string& x) {
    if (o_.dropout <= 0) return x;
    GRAFT_CHECK(o_.dropout < 1, kInvalidArgument, "dropout {} is not in [0, 1)", o_.dropout);
    if (g_.opset >= 12)
      return add("Dropout", "dropout", {x, constant("dropout_ratio", Tensor::scalar<float>(o_.dropout))});
    return add("Dropout", "dropout", {x}, {{"ratio", o_.dropout}});
  }

  // Linear layer on [N, in] (PyTorch's layout: weight [out, in]).
  std::string linear(const std::string& name, const std::string& x, int64_t in, int64_t out,
                     const std::string& output = "") {
    auto [w, b] = weights(name, {out, in});
    return add("Gemm", name, {x, w, b}, {{"transB", int64_t{1}}}, output);
  }

  // 1×1 convolution on [N, in, 1, 1] (the seed's head).
  std::string conv1x1(const std::string& name, const std::string& x, int64_t in, int64_t out) {
    auto [w, b] = weights(name, {out, in, 1, 1});
    return add("Conv", name, {x, w, b}, {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  }

 private:
  Graph& g_;
  const HeadOptions& o_;
  std::mt19937_64 rng_;
};

}  // namespace

void attach_head(Graph& graph, const std::string& feature, const HeadOptions& options) {
  GRAFT_CHECK(options.classes >= 1, kInvalidArgument, "a head needs at least 1 class, got {}",
              options.classes);
  const std::string feat = resolve_value(graph, feature);
  const ValueInfo info = default_infos(graph).at(feat);
  GRAFT_CHECK(info.dtype == DType::kF32 && (info.shape.size() == 2 || info.shape.size() == 4),
              kInvalidArgument, "features '{}' are {} {}; a head takes float32 [N, C] or [N, C, H, W]",
              feat, dtype_name(info.dtype), shape_str(info.shape));
  const int64_t channels = info.shape[1];
  HeadBuilder h(graph, options);
  std::string x = feat;
  if (info.shape.size() == 4 && info.shape[2] * info.shape[3] != 1)
    x = h.add("GlobalAveragePool", "pool", {x});
  const bool conv = options.kind == HeadOptions::Kind::kConv1x1;
  if (conv && info.shape.size() == 2)
    x = h.add("Reshape", "to_nchw", {x, h.constant("nchw_shape", Tensor::from_vector<int64_t>({4}, {0, -1, 1, 1}))});
  if (!conv) x = h.add("Flatten", "flatten", {x}, {{"axis", int64_t{1}}});
  int64_t width = channels;
  if (options.hidden > 0) {
    x = conv ? h.conv1x1("hidden", x, width, options.hidden) : h.linear("hidden", x, width, options.hidden);
    x = h.add("Relu", "hidden_relu", {x});
    width = options.hidden;
  }
  x = h.dropout(x);
  if (conv) {
    x = h.conv1x1("classifier", x, width, options.classes);
    x = h.add("Flatten", "classifier_flatten", {x}, {{"axis", int64_t{1}}}, options.output);
  } else {
    x = h.linear("classifier", x, width, options.classes, options.output);
  }
  graph.outputs = {ValueDecl{options.output, DType::kF32,
                             std::vector<Dim>{{-1, "batch"}, {options.classes, ""}}}};
  graph.sort_topologically();
}

void append_softmax(Graph& graph, const std::string& name) {
  GRAFT_CHECK(graph.outputs.size() == 1, kInvalidArgument,
              "Softmax is appended to a graph with one output, this one has {}", graph.outputs.size());
  Node n;
  n.name = name;
  n.op_type = "Softmax";
  n.inputs = {graph.outputs[0].name};
  n.outputs = {name};
  n.attrs["axis"] = int64_t{1};  // [N, classes]: the same axis in every opset's form
  graph.nodes.push_back(n);
  graph.outputs[0].name = name;
}

}  // namespace graft
