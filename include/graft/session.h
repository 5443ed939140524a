// Shape inference and execution of a Graph with graft's reference kernels.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graft/graph.h"

namespace graft {

// What is known about a value before anything runs: dtype, concrete shape,
// and its contents when they can be computed ahead (initializers, constants,
// shape arithmetic folded at inference time).
struct ValueInfo {
  DType dtype = DType::kF32;
  Shape shape;
  Tensor constant;  // undefined unless the value is known ahead
};

using ShapeMap = std::map<std::string, Shape>;
using TensorMap = std::map<std::string, Tensor>;

// Checks every node against the op registry (op known, input and output
// counts, attributes), throwing kUnsupported / kCorruption naming the node.
void validate_ops(const Graph& graph);

// Concrete shapes for the graph's inputs: those given in `given`, the others
// from their declared shapes (symbolic dimensions take `symbolic_default`).
ShapeMap resolve_input_shapes(const Graph& graph, const ShapeMap& given,
                              int64_t symbolic_default = -1);

// Infers dtype and shape of every value for the given input shapes. Throws
// naming the node whose inputs do not fit it. Graph inputs listed in
// `known_inputs` count as known ahead (their values, not just their shapes).
std::map<std::string, ValueInfo> infer_shapes(const Graph& graph, const ShapeMap& input_shapes,
                                              const TensorMap& known_inputs = {});

// Runs a graph. Shapes are inferred once per set of input shapes and reused.
class Session {
 public:
  explicit Session(Graph graph);

  const Graph& graph() const { return graph_; }
  // Runs the graph on `inputs` (one tensor per graph input) and returns every
  // graph output by name. Checks each input's dtype and shape against the
  // declaration first.
  TensorMap run(const TensorMap& inputs);
  // Value infos of the last prepared shapes.
  const std::map<std::string, ValueInfo>& infos() const { return infos_; }

 private:
  void prepare(const ShapeMap& shapes, const TensorMap& inputs);
  bool prepared_for(const ShapeMap& shapes, const TensorMap& inputs) const;
  Graph graph_;
  ShapeMap prepared_for_;
  // Small graph inputs whose values shapes were inferred with, when some op
  // needs them known ahead (e.g. Resize's scales fed as a graph input).
  TensorMap value_inputs_;
  std::map<std::string, ValueInfo> infos_;
  std::map<std::string, int> last_use_;  // value -> index of the last node reading it
};

}  // namespace graft
