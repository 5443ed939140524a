// The backward half of Session: which nodes a gradient flows through, and
// reverse-mode differentiation over them with each op's gradient rule.
#include <algorithm>
#include <chrono>
#include <iterator>

#include "backend/loops.h"
#include "graft/session.h"
#include "graph/plan.h"
#include "ops/op.h"

namespace graft {

namespace {

void add_into(Tensor& dst, const Tensor& src) {
  GRAFT_ASSERT(dst.shape() == src.shape() && dst.dtype() == src.dtype());
  visit_dtype(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      T* d = dst.data<T>();
      const T* s = src.data<T>();
      const int64_t n = dst.numel();  // a residual's gradient: up to 2.4 M values in W3
#pragma omp parallel for simd num_threads(backend::loop_threads(n)) schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] += s[i];
    } else {
      fail(ErrorKind::kInternal, "gradient of dtype {}", dtype_name(dst.dtype()));
    }
  });
}

// sum += g, in place only in a tensor whose storage no other holds (an
// Add's inputs share its output's gradient).
void accumulate(Tensor& sum, Tensor g) {
  if (!sum.shares_storage()) {
    add_into(sum, g);
  } else if (!g.shares_storage()) {
    add_into(g, sum);
    sum = std::move(g);
  } else {
    Tensor total = g.clone();
    add_into(total, sum);
    sum = std::move(total);
  }
}

}  // namespace

void Session::plan_training() {
  const size_t n = graph_.nodes.size();
  active_.assign(n, false);
  trains_.assign(n, false);
  requires_grad_ = graph_.trainable;
  for (size_t i = 0; i < n; ++i) {
    const Node& node = graph_.nodes[i];
    if (node.op_type == "BatchNormalization")  // frozen statistics unless its own scale/bias train
      trains_[i] = node.inputs.size() > 2 &&
                   (graph_.trainable.count(node.inputs[1]) || graph_.trainable.count(node.inputs[2]));
    std::vector<int> needing;
    for (size_t k = 0; k < node.inputs.size(); ++k)
      if (!node.inputs[k].empty() && requires_grad_.count(node.inputs[k])) needing.push_back(static_cast<int>(k));
    if (needing.empty()) continue;
    bool float_output = false;
    for (const std::string& o : node.outputs)
      float_output = float_output || (!o.empty() && is_floating(infos_.at(o).dtype));
    if (!float_output) continue;  // e.g. Shape of a trained value: no gradient flows back
    const ops::OpDef* def = ops::registry().find(node.op_type);
    GRAFT_CHECK(def->backward != nullptr, kUnsupported,
                "{}: op '{}' has no gradient, but trainable parameters lie before it",
                node.describe(), node.op_type);
    for (int k : needing) {
      GRAFT_CHECK(def->differentiable(k), kUnsupported, "{}: no gradient flows to input {} ('{}') of {}",
                  node.describe(), k, node.inputs[k], node.op_type);
    }
    active_[i] = true;
    if (node.op_type != "BatchNormalization") trains_[i] = true;
    for (const std::string& o : node.outputs)
      if (!o.empty() && is_floating(infos_.at(o).dtype)) requires_grad_.insert(o);
  }
}

void Session::backward(const TensorMap& output_grads) {
  GRAFT_CHECK(!saved_.empty(), kInvalidArgument,
              "backward() needs a run() in training mode with trainable parameters first");
  TensorMap grads;
  for (const auto& [name, g] : output_grads) {
    bool is_output = std::any_of(graph_.outputs.begin(), graph_.outputs.end(),
                                 [&n = name](const ValueDecl& d) { return d.name == n; });
    GRAFT_CHECK(is_output, kInvalidArgument, "'{}' is not a graph output", name);
    const ValueInfo& info = infos_.at(name);
    GRAFT_CHECK(g.shape() == info.shape && g.dtype() == info.dtype, kInvalidArgument,
                "the gradient of '{}' is {} {}, the output is {} {}", name, dtype_name(g.dtype()),
                shape_str(g.shape()), dtype_name(info.dtype), shape_str(info.shape));
    // A copy: gradients reaching a value from several readers are added into it.
    if (requires_grad_.count(name)) grads[name] = g.clone();
  }
  // Steps of the training plan that computed several nodes at once: their
  // gradient is computed at the first node, as that of one node reading
  // the step's reads and writing its writes.
  ExecutionPlan& plan = *plans_[1];
  std::map<int, const PlanStep*> fused_steps;
  std::set<int> fused_later;
  std::map<int, backend::ConvLayout> conv_layouts;  // Convs reading or writing channels-last values
  for (const PlanStep& s : plan.steps) {
    if (s.norm_activation || s.norm_depthwise) {
      fused_steps[s.node] = &s;
      fused_later.insert(s.fused.begin(), s.fused.end());
    }
    if (s.conv_layout) conv_layouts[s.node] = *s.conv_layout;
  }
  auto fused_step = [&](size_t i) -> const PlanStep* {
    auto it = fused_steps.find(static_cast<int>(i));
    return it == fused_steps.end() ? nullptr : it->second;
  };
  auto inputs_of = [&](size_t i) -> const std::vector<std::string>& {
    const PlanStep* fused = fused_step(i);
    return fused ? fused->reads : graph_.nodes[i].inputs;
  };
  auto outputs_of = [&](size_t i) -> const std::vector<std::string>& {
    const PlanStep* fused = fused_step(i);
    return fused ? fused->writes : graph_.nodes[i].outputs;
  };
  // The fused steps' gradients read their inputs only.
  auto reads_outputs = [&](size_t i) {
    return !fused_step(i) && ops::registry().find(graph_.nodes[i].op_type)->backward_reads_outputs;
  };
  // A saved value is released as soon as the last node reading it is done,
  // so the gradients reuse the activations' memory (the storage pool) rather
  // than adding to it.
  std::map<std::string, int> readers_left;
  auto for_each_read = [&](size_t i, const auto& f) {
    for (const std::string& name : inputs_of(i))
      if (!name.empty()) f(name);
    if (reads_outputs(i))
      for (const std::string& name : outputs_of(i))
        if (!name.empty()) f(name);
  };
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    if (active_[i] && !fused_later.count(static_cast<int>(i)))
      for_each_read(i, [&](const std::string& name) { ++readers_left[name]; });
  for (auto it = saved_.begin(); it != saved_.end();)  // what no gradient reads (a Conv's output)
    it = readers_left.count(it->first) ? std::next(it) : saved_.erase(it);
  auto release_reads = [&](size_t i) {
    for_each_read(i, [&](const std::string& name) {
      if (--readers_left[name] == 0) saved_.erase(name);
    });
  };
  for (size_t i = graph_.nodes.size(); i-- > 0;) {
    if (!active_[i] || fused_later.count(static_cast<int>(i))) continue;
    const Node& node = graph_.nodes[i];
    const PlanStep* fused = fused_step(i);
    const std::vector<std::string>& node_inputs = inputs_of(i);
    const std::vector<std::string>& node_outputs = outputs_of(i);
    std::vector<const Tensor*> grad_outputs;
    bool any = false;
    for (const std::string& o : node_outputs) {
      auto it = o.empty() ? grads.end() : grads.find(o);
      grad_outputs.push_back(it == grads.end() ? nullptr : &it->second);
      any = any || it != grads.end();
    }
    if (!any) {  // nothing downstream of this node reached the loss
      release_reads(i);
      continue;
    }
    std::vector<const Tensor*> inputs, outputs;
    for (const std::string& name : node_inputs)
      inputs.push_back(name.empty() ? nullptr : &saved_.at(name));
    for (const std::string& name : node_outputs)
      outputs.push_back(name.empty() || !reads_outputs(i) ? nullptr : &saved_.at(name));
    // An Add of two tensors of its output's shape passes dy on to both
    // inputs as it is: shared, not copied (accumulate() copies on write).
    const bool passes_through = !fused && node.op_type == "Add" && inputs.size() == 2 &&
                                inputs[0] && inputs[1] && grad_outputs[0] &&
                                inputs[0]->shape() == grad_outputs[0]->shape() &&
                                inputs[1]->shape() == grad_outputs[0]->shape();
    // A fused depthwise step's input gradient takes the input's own storage
    // when nothing else holds or reads the input: its lines are cached as the
    // step reads them, where a fresh buffer's are first fetched from memory
    // (block backwards at batch 32 10-15% faster).
    auto over_input = [&](size_t k) {
      const std::string& x = node_inputs[k];
      return fused && fused->norm_depthwise && k == kNdX && readers_left.at(x) == 1 &&
             !saved_.at(x).shares_storage();
    };
    std::vector<Tensor> grad_inputs(node_inputs.size());
    std::vector<Tensor*> grad_ptrs(node_inputs.size(), nullptr);
    for (size_t k = 0; k < node_inputs.size(); ++k) {
      if (node_inputs[k].empty() || !requires_grad_.count(node_inputs[k])) continue;
      if (passes_through) grad_inputs[k] = *grad_outputs[0];
      else if (over_input(k)) grad_inputs[k] = *inputs[k];
      else grad_inputs[k] = Tensor::uninitialized(inputs[k]->dtype(), inputs[k]->shape());
      grad_ptrs[k] = &grad_inputs[k];
    }
    const auto start = std::chrono::steady_clock::now();
    if (passes_through) {
      // Nothing to compute: each input's gradient is dy.
    } else if (fused && fused->norm_depthwise) {
      auto grad = [&](size_t k) { return k < grad_ptrs.size() ? grad_ptrs[k] : nullptr; };
      auto saved = [&](const std::string& v) -> const Tensor& { return saved_.at(v); };
      with_context(contexts_[i], [&] {
        backend::norm_depthwise_backward(
            *fused->norm_depthwise, plan.depthwise_statistics.at(fused->node),
            norm_depthwise_inputs(*fused, saved), *grad_outputs[0],
            {grad(kNdX), grad(kNdScale1), grad(kNdShift1), grad(kNdWeights), grad(kNdBias),
             grad(kNdScale2), grad(kNdShift2)});
      });
      // Its kept convolution output is read by no other step: free it now.
      plan.depthwise_statistics.at(fused->node).conv_output = Tensor();
    } else if (fused) {
      with_context(contexts_[i], [&] {
        backend::norm_activation_backward(
            *fused->norm_activation, plan.norm_statistics.at(fused->node), *inputs[0], *inputs[1],
            *inputs[2], *grad_outputs[0], grad_ptrs[0], grad_ptrs[1], grad_ptrs[2]);
      });
    } else {
      // run() counted its step after the forward: the forward's seed is step - 1's.
      ops::BackwardContext ctx{node,         graph_.opset, training_ && trains_[i], inputs, outputs,
                               grad_outputs, grad_ptrs,    node_seed(i, step_ - 1)};
      with_context(contexts_[i], [&] {
        if (auto layout = conv_layouts.find(static_cast<int>(i)); layout != conv_layouts.end())
          backend::conv_backward_in_layout(ctx, layout->second);
        else
          ops::run_backward(ctx);
      });
    }
    if (profiling_) {
      const std::string op = (fused ? fused->label : node.op_type) + " backward";
      OpTime& t = profile_[profiling_by_node_ ? op + " " + node.name : op];
      t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++t.calls;
    }
    for (const std::string& o : node_outputs) grads.erase(o);  // consumed
    for (size_t k = 0; k < node_inputs.size(); ++k) {
      if (!grad_ptrs[k]) continue;
      auto it = grads.find(node_inputs[k]);
      if (it == grads.end()) grads.emplace(node_inputs[k], std::move(grad_inputs[k]));
      else accumulate(it->second, std::move(grad_inputs[k]));
    }
    release_reads(i);
  }
  for (Parameter& p : parameters_) {
    auto it = grads.find(p.name);
    if (it != grads.end()) add_into(p.grad, it->second);
  }
  saved_.clear();
}

}  // namespace graft
