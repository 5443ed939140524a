#include "graft/session.h"

#include <chrono>
#include <cstring>

#include "backend/backend.h"
#include "core/storage_pool.h"
#include "graft/backend.h"
#include "graph/plan.h"
#include "ops/op.h"

namespace graft {

Session::Session(Graph graph) : graph_(std::move(graph)) {
  graph_.sort_topologically();
  validate_ops(graph_);
  for (const Node& n : graph_.nodes) contexts_.push_back(n.describe());
  for (const std::string& name : graph_.trainable) {
    auto it = graph_.initializers.find(name);
    GRAFT_CHECK(it != graph_.initializers.end(), kNotFound,
                "trainable parameter '{}' is not an initializer of the graph", name);
    GRAFT_CHECK(it->second.dtype() == DType::kF32, kUnsupported,
                "trainable parameter '{}' is {}; graft trains float32 parameters", name,
                dtype_name(it->second.dtype()));
    parameters_.push_back({name, it->second, Tensor(DType::kF32, it->second.shape())});
    variables_.insert(name);
  }
  // A BatchNormalization with trainable scale or bias updates its running
  // statistics in training mode, so they are variables too.
  for (const Node& n : graph_.nodes)
    if (n.op_type == "BatchNormalization" && n.inputs.size() == 5 &&
        (graph_.trainable.count(n.inputs[1]) || graph_.trainable.count(n.inputs[2]))) {
      variables_.insert(n.inputs[3]);
      variables_.insert(n.inputs[4]);
    }
}

void Session::zero_grad() {
  for (Parameter& p : parameters_) std::memset(p.grad.raw(), 0, p.grad.nbytes());
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
    if (value_inputs_.empty()) infos_ = infer_shapes(graph_, shapes, {}, variables_);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported || small_inputs(graph_, inputs).empty()) throw;
  }
  if (infos_.empty()) {
    value_inputs_ = small_inputs(graph_, inputs);
    infos_ = infer_shapes(graph_, shapes, value_inputs_, variables_);
  }
  prepared_for_ = shapes;
  plans_[0] = plans_[1] = nullptr;
  plan_training();
}

ExecutionPlan& Session::plan_for_mode() {
  std::shared_ptr<ExecutionPlan>& plan = plans_[training_];
  if (plan && plan->fast_kernels == !reference_kernels()) return *plan;
  const bool keep_for_backward = training_ && !parameters_.empty();
  const size_t n = graph_.nodes.size();
  PlanRequest request{graph_, infos_, variables_, std::vector<bool>(n), std::vector<bool>(n), {}};
  for (size_t i = 0; i < n; ++i) {
    request.alone[i] = training_ && (active_[i] || trains_[i]);
    request.batch_statistics[i] =
        training_ && trains_[i] && graph_.nodes[i].op_type == "BatchNormalization";
    if (!keep_for_backward || !active_[i]) continue;
    for (const std::string& v : graph_.nodes[i].inputs) request.outliving.insert(v);
    for (const std::string& v : graph_.nodes[i].outputs) request.outliving.insert(v);
  }
  plan = std::make_shared<ExecutionPlan>(make_plan(request));
  plan->fast_kernels = !reference_kernels();
  if (plan->arena_bytes > 0) {
    const size_t bytes = plan->arena_bytes;
    uint8_t* p = storage_pool::acquire(bytes);
    GRAFT_CHECK(p != nullptr, kInvalidArgument, "out of memory allocating a {} MiB arena",
                bytes >> 20);
    plan->arena =
        std::shared_ptr<uint8_t>(p, [bytes](uint8_t* q) { storage_pool::release(q, bytes); });
  }
  return *plan;
}

Tensor Session::make_value(const ExecutionPlan& plan, const std::string& name) const {
  const ValueInfo& info = infos_.at(name);
  auto it = plan.offsets.find(name);
  if (it == plan.offsets.end()) return Tensor::uninitialized(info.dtype, info.shape);
  return Tensor::over(std::shared_ptr<uint8_t>(plan.arena, plan.arena.get() + it->second),
                      info.dtype, info.shape);
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

  const bool keep_for_backward = training_ && !parameters_.empty();
  saved_.clear();
  // The run's values by name: the inputs, the variables and what the steps
  // compute. Constants are read where they are kept, not copied in per run.
  TensorMap values;
  for (const std::string& name : variables_) values[name] = graph_.initializers.at(name);
  for (const auto& [name, t] : inputs) values[name] = t;
  auto value = [&](const std::string& name) -> const Tensor& {
    if (auto it = values.find(name); it != values.end()) return it->second;
    const Tensor& known = infos_.at(name).constant;
    GRAFT_ASSERT(known.defined());
    return known;
  };

  ExecutionPlan& plan = plan_for_mode();
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const PlanStep& step = plan.steps[s];
    const size_t i = static_cast<size_t>(step.node);
    const Node& node = graph_.nodes[i];
    const bool train_node = training_ && trains_[i];
    const auto start = std::chrono::steady_clock::now();
    with_context(contexts_[i], [&] {
      if (step.conv) {
        Tensor y = make_value(plan, step.y);
        backend::run_fused_conv(*step.conv, value(step.x),
                                step.addend.empty() ? nullptr : &value(step.addend), y);
        values[step.y] = std::move(y);
        return;
      }
      if (step.norm_depthwise) {
        Tensor y = make_value(plan, step.writes.at(0));
        auto param = [&](size_t k) -> Tensor& { return graph_.initializers.at(step.reads[k]); };
        plan.depthwise_statistics[step.node] = backend::norm_depthwise_forward(
            *step.norm_depthwise, norm_depthwise_inputs(step, value), param(kNdMean1),
            param(kNdVar1), param(kNdMean2), param(kNdVar2), y);
        values[step.writes[0]] = std::move(y);
        return;
      }
      if (step.norm_activation) {
        const std::string& out = step.writes.at(0);
        Tensor y = make_value(plan, out);
        plan.norm_statistics[step.node] = backend::norm_activation_forward(
            *step.norm_activation, value(node.inputs[0]), value(node.inputs[1]),
            value(node.inputs[2]), graph_.initializers.at(node.inputs[3]),
            graph_.initializers.at(node.inputs[4]), y);
        values[out] = std::move(y);
        return;
      }
      if (step.x_channels_last) {  // a GlobalAveragePool (plan.h)
        Tensor y = make_value(plan, node.outputs[0]);
        backend::global_average_pool_channels_last(value(node.inputs[0]), y);
        values[node.outputs[0]] = std::move(y);
        return;
      }
      std::vector<const Tensor*> in;
      for (const std::string& name : node.inputs) in.push_back(name.empty() ? nullptr : &value(name));
      if (train_node && node.op_type == "BatchNormalization") {
        std::vector<ValueInfo> out_infos;
        for (const std::string& o : node.outputs) out_infos.push_back(o.empty() ? ValueInfo{} : infos_.at(o));
        std::vector<Tensor> outs = run_batch_norm_training(node, in, out_infos);
        for (size_t k = 0; k < node.outputs.size(); ++k)
          if (!node.outputs[k].empty()) values[node.outputs[k]] = std::move(outs[k]);
        return;
      }
      if (step.conv_layout) {
        Tensor y = make_value(plan, node.outputs[0]);
        backend::conv_forward_in_layout(
            ops::KernelContext{node, graph_.opset, in, {&y}, train_node, node_seed(i, step_)},
            *step.conv_layout);
        values[node.outputs[0]] = std::move(y);
        return;
      }
      std::vector<Tensor> outs(node.outputs.size());
      std::vector<Tensor*> out_ptrs(node.outputs.size(), nullptr);
      for (size_t k = 0; k < node.outputs.size(); ++k)
        if (!node.outputs[k].empty()) {
          outs[k] = make_value(plan, node.outputs[k]);
          out_ptrs[k] = &outs[k];
        }
      ops::run_node_into(node, graph_.opset, in, out_ptrs, train_node, node_seed(i, step_));
      for (size_t k = 0; k < node.outputs.size(); ++k)
        if (!node.outputs[k].empty()) values[node.outputs[k]] = std::move(outs[k]);
    });
    if (profiling_) {
      OpTime& t = profile_[profiling_by_node_ ? step.label + " " + node.name : step.label];
      t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++t.calls;
    }
    if (keep_for_backward && active_[i]) {
      for (const std::string& name : step.reads) saved_[name] = value(name);
      for (const std::string& name : step.writes) saved_[name] = value(name);
    }
    for (const std::string& name : step.releases) values.erase(name);
  }
  if (training_) ++step_;
  TensorMap outputs;
  for (const ValueDecl& out : graph_.outputs) outputs[out.name] = value(out.name);
  return outputs;
}

uint64_t Session::node_seed(size_t node_index, uint64_t step) const {
  // splitmix64 of (seed, step, node): independent streams per node and step.
  uint64_t z = seed_ ^ (step * 0x9E3779B97F4A7C15ull) ^ (node_index * 0xBF58476D1CE4E5B9ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<Tensor> Session::run_batch_norm_training(const Node& node,
                                                     const std::vector<const Tensor*>& in,
                                                     std::vector<ValueInfo> out_infos) {
  // Ask the kernel for the updated running statistics as two extra outputs,
  // then store them into the running-statistics initializers.
  Node with_stats = node;
  with_stats.outputs.resize(1);
  with_stats.outputs.push_back(node.name + "/running_mean");
  with_stats.outputs.push_back(node.name + "/running_var");
  out_infos.resize(1);
  out_infos.push_back(ValueInfo{in[3]->dtype(), in[3]->shape(), Tensor()});
  out_infos.push_back(ValueInfo{in[4]->dtype(), in[4]->shape(), Tensor()});
  std::vector<Tensor> outs = ops::run_node(with_stats, graph_.opset, in, out_infos, true);
  for (int k : {1, 2}) {
    Tensor& stat = graph_.initializers.at(node.inputs[2 + k]);
    std::memcpy(stat.raw(), outs[k].raw(), stat.nbytes());
  }
  outs.resize(node.outputs.size());
  return outs;
}

}  // namespace graft
