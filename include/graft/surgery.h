// Graph surgery for transfer learning: find a cut, extract the part of a
// graph before it, choose what trains, and attach a new head.
#pragma once

#include <string>
#include <vector>

#include "graft/graph.h"

namespace graft {

// The value a user's name refers to: a value name, or a node name (meaning
// its first output). kNotFound suggests the nearest names.
std::string resolve_value(const Graph& graph, const std::string& name);

// The subgraph computing `outputs` from `inputs`: only the nodes those
// outputs need, stopping at the inputs, which become the graph inputs. An
// input that was an intermediate value gets the dtype and shape inference
// gives it, with a symbolic first (batch) dimension. Initializers are shared
// with `graph` (same storage), and so is the trainable set's intersection.
// kInvalidArgument when an output needs a graph input not among `inputs`.
Graph extract(const Graph& graph, const std::vector<std::string>& inputs,
              const std::vector<std::string>& outputs);

// The parameters of a node: its floating-point initializer inputs that a
// gradient can reach (Conv's weight and bias, BatchNormalization's scale and
// bias; not running statistics, shapes or clip bounds).
std::vector<std::string> parameters_of(const Graph& graph, const Node& node);

// Marks trainable (or frozen) every parameter (see parameters_of) whose
// name matches `pattern` (ECMAScript regex, searched). Returns how many matched.
int set_trainable(Graph& graph, const std::string& pattern, bool trainable);

// The graph's blocks in order: runs of nodes between the points where a
// single activation carries everything forward (a residual block is one
// block; a conv with its BatchNorm and activation is one block). Each block
// lists its nodes' names and has at least one node with parameters.
std::vector<std::vector<std::string>> find_blocks(const Graph& graph);

// Makes trainable the parameters of the last `k` blocks (and only adds:
// parameters already trainable stay so). Returns the names added.
std::vector<std::string> unfreeze_last_blocks(Graph& graph, int k);

struct HeadOptions {
  int64_t classes = 2;
  enum class Kind { kLinear, kConv1x1 } kind = Kind::kLinear;  // the seed uses a 1×1 conv
  int64_t hidden = 0;      // > 0: a hidden layer of this width with ReLU
  float dropout = 0;       // dropout before the last layer (needs hidden > 0 or any head)
  enum class Init { kKaimingUniform, kXavierUniform } init = Init::kKaimingUniform;
  uint64_t seed = 0;
  std::string output = "logits";
};

// Appends a new classifier head fed by `feature` ([N, C], [N, C, 1, 1], or
// [N, C, H, W], which is global-average-pooled first) and makes its output
// the graph's only output. Its parameters are named "head/..." and are
// trainable; nothing else changes. Kaiming uniform initialisation is
// PyTorch's default for Linear and Conv (bound 1/sqrt(fan_in)).
void attach_head(Graph& graph, const std::string& feature, const HeadOptions& options);

// Appends Softmax over the last axis of the only output (for export: the
// served model then gives probabilities). The output is renamed `name`.
void append_softmax(Graph& graph, const std::string& name = "probabilities");

}  // namespace graft
