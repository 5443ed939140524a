#include <algorithm>
#include <set>

#include "graft/graph.h"

namespace graft {

std::vector<std::string> suggest_cut_points(const Graph& graph) {
  static const std::set<std::string> kClassifier = {"Gemm", "MatMul", "Conv", "Add", "Softmax",
                                                    "LogSoftmax", "Sigmoid", "Dropout", "Identity"};
  static const std::set<std::string> kPoolOrFlatten = {
      "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "AveragePool",
      "MaxPool",           "Flatten",       "Reshape",    "Squeeze"};
  static const std::set<std::string> kPool = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
                                              "ReduceMax", "AveragePool", "MaxPool"};
  if (graph.outputs.empty()) return {};
  // Walk back along each node's first non-constant input.
  std::vector<const Node*> chain;
  std::string value = graph.outputs[0].name;
  for (const Node* n = graph.producer(value); n && chain.size() < graph.nodes.size();) {
    chain.push_back(n);
    const Node* next = nullptr;
    for (const std::string& in : n->inputs) {
      if (in.empty() || graph.is_initializer(in)) continue;
      next = graph.producer(in);
      break;
    }
    n = next;
  }
  std::vector<std::string> cuts;
  bool seen_classifier = false;
  for (const Node* n : chain) {
    if (!seen_classifier) {
      if (n->op_type == "Gemm" || n->op_type == "MatMul" || n->op_type == "Conv")
        seen_classifier = true;
      else if (!kClassifier.count(n->op_type) && !kPoolOrFlatten.count(n->op_type))
        return {};
      continue;
    }
    if (!kPoolOrFlatten.count(n->op_type)) break;
    cuts.push_back(n->outputs[0]);
    if (kPool.count(n->op_type)) break;  // the pooling itself is the deepest cut worth suggesting
  }
  // Pooled output first (the seed's "AvgPool"), then any flatten after it.
  std::reverse(cuts.begin(), cuts.end());
  return cuts;
}

}  // namespace graft
