// graft's one intermediate representation: a graph of nodes connected by named
// values, with initializers (weights) stored as tensors. Every importer (ONNX,
// TF.js) produces a Graph; surgery, training and export work on it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "graft/tensor.h"

namespace graft {

struct Graph;

// An attribute value, as ONNX defines them. Subgraph attributes are not
// supported (the importer rejects them).
using Attribute = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>, Tensor>;

struct Node {
  std::string name;     // unique within the graph (the importer names unnamed nodes)
  std::string op_type;  // "Conv", "Relu", ...
  std::vector<std::string> inputs;   // value names; "" is an absent optional input
  std::vector<std::string> outputs;  // value names; "" is an unused optional output
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  // Typed attribute access; a missing key gives the default, a wrong type an error.
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& key, std::vector<float> fallback = {}) const;
  const Tensor& attr_tensor(const std::string& key) const;
  // "node 'conv1' (Conv)": the context string errors carry.
  std::string describe() const;
};

// A dimension as declared by a model file: a number, or a symbol like "batch".
struct Dim {
  int64_t value = -1;  // -1 when symbolic or unknown
  std::string symbol;
};

// The declared type of a graph input or output.
struct ValueDecl {
  std::string name;
  DType dtype = DType::kF32;
  std::optional<std::vector<Dim>> shape;  // nullopt: rank unknown
};

struct Graph {
  std::string name;
  int opset = 0;  // version of the default ONNX domain
  std::vector<Node> nodes;
  std::vector<ValueDecl> inputs;   // runtime inputs (never initializers)
  std::vector<ValueDecl> outputs;
  std::map<std::string, Tensor> initializers;
  std::set<std::string> trainable;  // initializers a training run updates; the rest are frozen
  std::map<std::string, std::string> metadata;  // free-form key/value pairs

  const Node* find_node(const std::string& name) const;
  // The node whose outputs include `value`, or nullptr (inputs, initializers).
  const Node* producer(const std::string& value) const;
  bool is_initializer(const std::string& value) const { return initializers.count(value) != 0; }
  const ValueDecl* find_input(const std::string& name) const;

  // Reorders nodes topologically. Throws kCorruption naming the node on a
  // cycle, an input that nothing defines, or a value defined twice.
  void sort_topologically();
  // Names of all values in the graph, for "did you mean" suggestions.
  std::vector<std::string> value_names() const;
};

// Up to `limit` of `candidates` closest to `name` by edit distance.
std::vector<std::string> nearest_names(const std::string& name,
                                       const std::vector<std::string>& candidates,
                                       size_t limit = 3);

}  // namespace graft

namespace graft {

// Values where a model is usually cut for transfer learning: the output of
// the last global pooling (or the flatten after it) before the final
// classifier, found by walking back from the first graph output. Best first;
// empty when the graph has no such structure.
std::vector<std::string> suggest_cut_points(const Graph& graph);

}  // namespace graft
