#include <algorithm>
#include <set>

#include "graft/graph.h"

namespace graft {

std::vector<std::string> suggest_cut_points(const Graph& graph) {
  // What a classifier head is made of (a linear layer or 1×1 conv, maybe an
  // MLP with activations and dropout, reshapes, a final softmax).
  static const std::set<std::string> kHead = {
      "Gemm",    "MatMul",  "Conv",    "Add",     "Relu",      "Clip",     "LeakyRelu", "Sigmoid",
      "Softmax", "LogSoftmax", "Dropout", "Identity", "Flatten", "Reshape", "Squeeze",  "Transpose",
      "Mul",     "Sub",     "BatchNormalization"};
  static const std::set<std::string> kPool = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
                                              "ReduceMax", "AveragePool", "MaxPool"};
  static const std::set<std::string> kClassifier = {"Gemm", "MatMul", "Conv"};
  static const std::set<std::string> kReshape = {"Flatten", "Reshape", "Squeeze", "Transpose"};
  if (graph.outputs.empty()) return {};
  // Walk back from the output along each node's first non-constant input.
  std::vector<const Node*> chain;
  for (const Node* n = graph.producer(graph.outputs[0].name); n && chain.size() < graph.nodes.size();) {
    chain.push_back(n);
    const Node* next = nullptr;
    for (const std::string& in : n->inputs) {
      if (in.empty() || graph.is_initializer(in)) continue;
      next = graph.producer(in);
      break;
    }
    n = next;
  }
  // The last pooling whose every later node is head-like, with a classifier after it.
  bool seen_classifier = false;
  for (size_t i = 0; i < chain.size(); ++i) {
    const Node* n = chain[i];
    if (kPool.count(n->op_type) && seen_classifier) {
      std::vector<std::string> cuts = {n->outputs[0]};
      // Then the flatten/reshape right after it, if any (the seed's cut is the pool).
      for (size_t j = i; j-- > 0 && kReshape.count(chain[j]->op_type);) cuts.push_back(chain[j]->outputs[0]);
      return cuts;
    }
    if (!kHead.count(n->op_type)) return {};
    seen_classifier = seen_classifier || kClassifier.count(n->op_type);
  }
  return {};
}

}  // namespace graft
