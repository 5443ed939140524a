#include <algorithm>
#include <cstring>

#include "ops/op.h"

namespace graft::ops {

InferContext::InferContext(const Node& n, int op_set, std::vector<const ValueInfo*> inputs)
    : node(n), opset(op_set), inputs_(std::move(inputs)), outputs_(n.outputs.size()) {}

const ValueInfo& InferContext::input(int i) const {
  GRAFT_CHECK(has_input(i), kCorruption, "input {} is required", i);
  return *inputs_[i];
}

const Tensor* InferContext::constant(int i) const {
  if (!has_input(i) || !inputs_[i]->constant.defined()) return nullptr;
  return &inputs_[i]->constant;
}

const Tensor& InferContext::require_constant(int i, const char* what) const {
  const Tensor* t = constant(i);
  GRAFT_CHECK(t != nullptr, kUnsupported,
              "input {} ({}) must be known before running (a constant or computed from shapes)", i,
              what);
  return *t;
}

void InferContext::require_dtype(int i, std::initializer_list<DType> allowed) const {
  DType t = dtype(i);
  if (std::find(allowed.begin(), allowed.end(), t) != allowed.end()) return;
  fail(ErrorKind::kUnsupported, "input {} has dtype {}, which this op does not support", i,
       dtype_name(t));
}

void InferContext::set_output(int i, DType dtype, Shape shape) {
  GRAFT_ASSERT(i < static_cast<int>(outputs_.size()));
  shape_numel(shape);  // rejects negative and overflowing shapes
  outputs_[i].dtype = dtype;
  outputs_[i].shape = std::move(shape);
}

void InferContext::set_output_constant(int i, Tensor value) {
  set_output(i, value.dtype(), value.shape());
  outputs_[i].constant = std::move(value);
}

void OpRegistry::add(OpDef def) {
  GRAFT_ASSERT(find(def.type) == nullptr);
  defs_.push_back(std::move(def));
}

const OpDef* OpRegistry::find(const std::string& type) const {
  for (const OpDef& d : defs_)
    if (d.type == type) return &d;
  return nullptr;
}

std::vector<std::string> OpRegistry::names() const {
  std::vector<std::string> out;
  for (const OpDef& d : defs_) out.push_back(d.type);
  std::sort(out.begin(), out.end());
  return out;
}

const OpRegistry& registry() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_elementwise_ops(reg);
    register_activation_ops(reg);
    register_conv_ops(reg);
    register_pool_ops(reg);
    register_normalization_ops(reg);
    register_linalg_ops(reg);
    register_reduce_ops(reg);
    register_shape_ops(reg);
    register_resize_ops(reg);
    return reg;
  }();
  return r;
}

void check_node(const Node& node, int opset) {
  with_context(node.describe(), [&] {
    const OpDef* def = registry().find(node.op_type);
    GRAFT_CHECK(def != nullptr, kUnsupported, "op '{}' is not supported by graft", node.op_type);
    int n_in = static_cast<int>(node.inputs.size());
    int n_out = static_cast<int>(node.outputs.size());
    GRAFT_CHECK(n_in >= def->min_inputs && n_in <= def->max_inputs, kCorruption,
                "has {} inputs; {} takes {} to {}", n_in, node.op_type, def->min_inputs,
                def->max_inputs);
    GRAFT_CHECK(n_out >= def->min_outputs && n_out <= def->max_outputs, kCorruption,
                "has {} outputs; {} gives {} to {}", n_out, node.op_type, def->min_outputs,
                def->max_outputs);
    for (const auto& [key, value] : node.attrs) {
      bool known = std::find(def->attributes.begin(), def->attributes.end(), key) !=
                   def->attributes.end();
      GRAFT_CHECK(known, kUnsupported, "attribute '{}' is not supported", key);
    }
    if (def->check) def->check(node, opset);
  });
}

std::vector<Tensor> run_node(const Node& node, int opset, const std::vector<const Tensor*>& inputs,
                             const std::vector<ValueInfo>& out_infos, bool training, uint64_t seed) {
  std::vector<Tensor> outs(node.outputs.size());
  std::vector<Tensor*> out_ptrs(node.outputs.size(), nullptr);
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    if (node.outputs[i].empty()) continue;
    outs[i] = Tensor::uninitialized(out_infos[i].dtype, out_infos[i].shape);
    out_ptrs[i] = &outs[i];
  }
  run_node_into(node, opset, inputs, out_ptrs, training, seed);
  return outs;
}

void run_node_into(const Node& node, int opset, const std::vector<const Tensor*>& inputs,
                   const std::vector<Tensor*>& outputs, bool training, uint64_t seed) {
  KernelContext ctx{node, opset, inputs, outputs, training, seed};
  run_compute(ctx);
}

namespace {

const OpDef& def_of(const Node& node) {
  const OpDef* def = registry().find(node.op_type);
  GRAFT_ASSERT(def != nullptr);
  return *def;
}

void zero(const std::vector<Tensor*>& tensors) {
  for (Tensor* t : tensors)
    if (t && t->nbytes() > 0) std::memset(t->raw(), 0, t->nbytes());
}

}  // namespace

void run_compute(KernelContext& ctx) {
  const OpDef& def = def_of(ctx.node);
  if (def.fast_compute && def.fast_compute(ctx)) return;
  zero(ctx.outputs);
  def.compute(ctx);
}

void run_backward(BackwardContext& ctx) {
  const OpDef& def = def_of(ctx.node);
  GRAFT_ASSERT(def.backward != nullptr);
  if (def.fast_backward && def.fast_backward(ctx)) return;
  zero(ctx.grad_inputs);
  def.backward(ctx);
}

}  // namespace graft::ops
