// The op registry. Each op is one OpDef: which inputs, outputs and attributes
// it accepts, a shape function, and a reference kernel (plain, readable,
// obviously correct). Ops live in src/ops/*.cpp grouped by kind and are
// registered by the group's register_*_ops function.
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "graft/graph.h"
#include "graft/session.h"

namespace graft::ops {

class InferContext {
 public:
  InferContext(const Node& node, int opset, std::vector<const ValueInfo*> inputs);

  const Node& node;
  const int opset;

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  // True when input i is given (present and not the empty name).
  bool has_input(int i) const { return i < num_inputs() && inputs_[i] != nullptr; }
  const ValueInfo& input(int i) const;
  const Shape& shape(int i) const { return input(i).shape; }
  DType dtype(int i) const { return input(i).dtype; }
  // The value of input i when known ahead, else nullptr.
  const Tensor* constant(int i) const;
  // The value of input i; kUnsupported if it is only known at run time.
  const Tensor& require_constant(int i, const char* what) const;
  // kUnsupported unless input i has one of the given dtypes.
  void require_dtype(int i, std::initializer_list<DType> allowed) const;
  // kInvalidArgument naming the node unless cond holds.
  template <typename... Args>
  void check(bool cond, fmt::format_string<Args...> f, Args&&... args) const {
    if (!cond) fail(ErrorKind::kInvalidArgument, f, std::forward<Args>(args)...);
  }

  int num_outputs() const { return static_cast<int>(node.outputs.size()); }
  bool wants_output(int i) const { return i < num_outputs() && !node.outputs[i].empty(); }
  void set_output(int i, DType dtype, Shape shape);
  // An output whose value is known without running (e.g. Shape).
  void set_output_constant(int i, Tensor value);
  std::vector<ValueInfo>& outputs() { return outputs_; }

 private:
  std::vector<const ValueInfo*> inputs_;
  std::vector<ValueInfo> outputs_;
};

struct KernelContext {
  const Node& node;
  int opset;
  std::vector<const Tensor*> inputs;  // nullptr: absent optional input
  std::vector<Tensor*> outputs;       // nullptr: output not requested; else
                                      // allocated with the inferred shape: zeroed
                                      // for compute, unspecified for fast_compute
  // Training mode for the ops that behave differently when training
  // (BatchNormalization uses batch statistics, Dropout drops); the executor
  // sets it only for nodes in a trainable part of the graph.
  bool training = false;
  uint64_t seed = 0;  // for random ops; the executor varies it per step
  bool has_input(int i) const { return i < static_cast<int>(inputs.size()) && inputs[i]; }
  const Tensor& in(int i) const { return *inputs.at(i); }
  Tensor& out(int i) const { return *outputs.at(i); }
};

// The gradient of one node: given the forward inputs and outputs and the
// gradients flowing into the outputs, computes the gradients of the inputs
// the caller asks for.
struct BackwardContext {
  const Node& node;
  int opset;
  bool training;                           // the mode the forward ran in
  std::vector<const Tensor*> inputs;       // forward inputs (nullptr: absent)
  std::vector<const Tensor*> outputs;      // forward outputs (nullptr: not computed)
  std::vector<const Tensor*> grad_outputs; // nullptr: no gradient reaches that output (zero)
  std::vector<Tensor*> grad_inputs;        // nullptr: not needed (the mask); else
                                           // input-shaped, zeroed for backward and
                                           // unspecified for fast_backward: write it
  uint64_t seed = 0;                       // the forward's KernelContext::seed (Dropout's mask)
  const Tensor& in(int i) const { return *inputs.at(i); }
  const Tensor& out(int i) const { return *outputs.at(i); }
  bool has_grad_output(int i) const {
    return i < static_cast<int>(grad_outputs.size()) && grad_outputs[i];
  }
  const Tensor& grad_out(int i) const { return *grad_outputs.at(i); }
  bool wants_grad(int i) const { return i < static_cast<int>(grad_inputs.size()) && grad_inputs[i]; }
  Tensor& grad_in(int i) const { return *grad_inputs.at(i); }
};

struct OpDef {
  std::string type;
  int min_inputs = 1, max_inputs = 1;
  int min_outputs = 1, max_outputs = 1;
  std::vector<std::string> attributes;  // every attribute the op accepts
  // Optional: validates attribute values at load time (e.g. a mode graft
  // does not implement), throwing kUnsupported.
  std::function<void(const Node&, int opset)> check;
  std::function<void(InferContext&)> infer;
  std::function<void(KernelContext&)> compute;
  // Optional fast kernels (src/backend), tried before compute and backward.
  // They return false when they decline the case (the runners then zero the
  // outputs and run the reference kernel); when they serve they write every
  // output they were given, which the runners therefore do not zero first.
  std::function<bool(KernelContext&)> fast_compute;
  std::function<bool(BackwardContext&)> fast_backward;
  // Which inputs a gradient can flow to (e.g. Conv: X, W, B; Reshape: data
  // only). Asking for any other input's gradient is an error naming the node.
  std::vector<int> differentiable_inputs;
  bool every_input_differentiable = false;  // variadic ops such as Concat
  bool differentiable(int input) const {
    return every_input_differentiable ||
           std::find(differentiable_inputs.begin(), differentiable_inputs.end(), input) !=
               differentiable_inputs.end();
  }
  // The gradient rule, beside the forward it differentiates. Empty for ops
  // without one: differentiating through them is an error naming the node.
  std::function<void(BackwardContext&)> backward;
  // Whether the gradient rules read the forward's outputs (BackwardContext::
  // outputs). When not, the session does not keep them for this op's
  // backward, and they are null there.
  bool backward_reads_outputs = true;
};

class OpRegistry {
 public:
  void add(OpDef def);
  const OpDef* find(const std::string& type) const;
  std::vector<std::string> names() const;

 private:
  std::vector<OpDef> defs_;
};

// The registry with every op graft supports.
const OpRegistry& registry();
// Throws kUnsupported / kCorruption naming the node when graft cannot run it.
void check_node(const Node& node, int opset);

// Runs one node: allocates each requested output with its inferred dtype
// and shape and runs the op's kernel (run_compute).
std::vector<Tensor> run_node(const Node& node, int opset, const std::vector<const Tensor*>& inputs,
                             const std::vector<ValueInfo>& out_infos, bool training = false,
                             uint64_t seed = 0);

// Clip's float32 bounds: from attributes before opset 11, from the optional
// inputs (nullptr when absent) after; a missing bound does not limit.
std::pair<float, float> clip_bounds_f32(const Node& node, int opset,
                                        const std::vector<const Tensor*>& inputs);

// Runs one node into outputs the caller allocated with the inferred dtypes
// and shapes, contents unspecified (nullptr: output not requested).
void run_node_into(const Node& node, int opset, const std::vector<const Tensor*>& inputs,
                   const std::vector<Tensor*>& outputs, bool training = false, uint64_t seed = 0);

// An op's kernel and gradient as every caller runs them: the fast kernel
// when there is one and it serves, otherwise the reference on zeroed
// outputs. The outputs (grad_inputs) may hold anything on entry.
void run_compute(KernelContext& ctx);
void run_backward(BackwardContext& ctx);

// One function per group of ops (src/ops/<group>.cpp).
void register_elementwise_ops(OpRegistry& r);
void register_activation_ops(OpRegistry& r);
void register_conv_ops(OpRegistry& r);
void register_pool_ops(OpRegistry& r);
void register_normalization_ops(OpRegistry& r);
void register_linalg_ops(OpRegistry& r);
void register_reduce_ops(OpRegistry& r);
void register_shape_ops(OpRegistry& r);
void register_resize_ops(OpRegistry& r);

}  // namespace graft::ops
