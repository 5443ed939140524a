// Shape inference and execution of a Graph with graft's reference kernels.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "graft/graph.h"
#include "graft/parameter.h"

namespace graft {

struct ExecutionPlan;  // src/graph/plan.h

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
// Initializers named in `variables` change between runs (trained
// parameters, running statistics): they are never folded as constants.
std::map<std::string, ValueInfo> infer_shapes(const Graph& graph, const ShapeMap& input_shapes,
                                              const TensorMap& known_inputs = {},
                                              const std::set<std::string>& variables = {});

// Runs a graph forward, and backward when it has trainable parameters.
// Shapes are inferred once per set of input shapes and reused.
//
// Training: the graph's `trainable` initializers are the parameters. In
// training mode (set_training(true)) the nodes of the trainable part run as
// in training (a BatchNormalization whose scale or bias is trainable uses
// batch statistics and updates its running statistics; a Dropout fed by a
// trainable part drops), and run() keeps what backward() needs. Frozen
// parts always run as in inference and keep nothing.
class Session {
 public:
  explicit Session(Graph graph);

  // The graph, with the current values of the trained parameters and
  // running statistics (they share storage).
  const Graph& graph() const { return graph_; }
  // Runs the graph on `inputs` (one tensor per graph input) and returns every
  // graph output by name. Checks each input's dtype and shape against the
  // declaration first.
  TensorMap run(const TensorMap& inputs);
  // Value infos of the last prepared shapes.
  const std::map<std::string, ValueInfo>& infos() const { return infos_; }

  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  // Fixes the random stream of Dropout: the k-th training-mode run after
  // this call draws from (seed, step + k), whatever else happens, so a
  // resumed run can continue the stream where it stopped.
  void set_seed(uint64_t seed, uint64_t step = 0) {
    seed_ = seed;
    step_ = step;
  }

  // Per-op time: when on, run() and backward() add each node's kernel time
  // to profile(), keyed by op type ("Conv", "Conv backward"), or with
  // by_node by op type and node name ("Conv backward stem/conv").
  void set_profiling(bool on, bool by_node = false) {
    profiling_ = on;
    profiling_by_node_ = by_node;
  }
  struct OpTime {
    double seconds = 0;
    int64_t calls = 0;
  };
  const std::map<std::string, OpTime>& profile() const { return profile_; }
  void clear_profile() { profile_.clear(); }

  Parameters& parameters() { return parameters_; }
  // Initializers training changes: the parameters and the running
  // statistics of training BatchNorms (what a checkpoint must hold).
  const std::set<std::string>& variables() const { return variables_; }
  void zero_grad();
  // Back-propagates d loss / d output (one tensor per graph output that the
  // loss depends on) through the last training-mode run() and adds the
  // parameters' gradients to parameters()[i].grad.
  void backward(const TensorMap& output_grads);

 private:
  void prepare(const ShapeMap& shapes, const TensorMap& inputs);
  bool prepared_for(const ShapeMap& shapes, const TensorMap& inputs) const;
  void plan_training();
  ExecutionPlan& plan_for_mode();
  // A value a step writes (contents unspecified): a slice of the plan's
  // arena, or its own storage when it outlives the run.
  Tensor make_value(const ExecutionPlan& plan, const std::string& name) const;
  uint64_t node_seed(size_t node_index, uint64_t step) const;
  std::vector<Tensor> run_batch_norm_training(const Node& node, const std::vector<const Tensor*>& in,
                                              std::vector<ValueInfo> out_infos);

  Graph graph_;
  std::vector<std::string> contexts_;  // per node: what an error inside it names
  ShapeMap prepared_for_;
  // Small graph inputs whose values shapes were inferred with, when some op
  // needs them known ahead (e.g. Resize's scales fed as a graph input).
  TensorMap value_inputs_;
  std::map<std::string, ValueInfo> infos_;
  // The execution plans of the prepared shapes, by mode (training_), made
  // on first use.
  std::shared_ptr<ExecutionPlan> plans_[2];

  // Training state.
  Parameters parameters_;
  std::set<std::string> variables_;      // initializers that change: parameters, running stats
  std::set<std::string> requires_grad_;  // values a gradient flows to
  std::vector<bool> active_;             // per node: has inputs that require grad
  std::vector<bool> trains_;             // per node: runs in training mode when training_
  bool training_ = false;
  uint64_t seed_ = 0;
  uint64_t step_ = 0;
  TensorMap saved_;                      // forward values backward() reads
  bool profiling_ = false, profiling_by_node_ = false;
  std::map<std::string, OpTime> profile_;
};

}  // namespace graft
