#include "graph/plan.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <tuple>

#include "graft/passes.h"
#include "ops/op.h"
#include "ops/shape_ops.h"

namespace graft {

namespace {

size_t g_depthwise_fusion_bytes = size_t{40} << 20;

bool is_activation(const std::string& op) {
  return op == "Relu" || op == "LeakyRelu" || op == "Sigmoid" || op == "Tanh" ||
         op == "HardSwish" || op == "Clip";
}

class Planner {
 public:
  explicit Planner(const PlanRequest& r) : r_(r), nodes_(r.graph.nodes) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (const std::string& in : nodes_[i].inputs)
        if (!in.empty()) readers_[in].push_back(static_cast<int>(i));
      for (const std::string& out : nodes_[i].outputs)
        if (!out.empty()) producer_[out] = static_cast<int>(i);
    }
    for (const ValueDecl& out : r.graph.outputs) graph_outputs_.insert(out.name);
  }

  ExecutionPlan plan() {
    ExecutionPlan p;
    std::vector<bool> absorbed(nodes_.size(), false);
    std::map<int, Chain> ahead;  // chains of convolutions whose input nodes joined them
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (absorbed[i] || computed_ahead(nodes_[i])) continue;
      std::optional<PlanStep> s = norm_depthwise_step(static_cast<int>(i));
      if (!s) s = norm_activation_step(static_cast<int>(i));
      if (s) {
        for (int j : s->fused) absorbed[j] = true;
        p.steps.push_back(std::move(*s));
        continue;
      }
      if (InputNodes in = input_nodes_from(static_cast<int>(i)); in.conv >= 0)
        if (std::optional<Chain> c = chain_from(in.conv, in)) {
          if (in.pad >= 0) absorbed[in.pad] = true;
          if (in.transpose >= 0) absorbed[in.transpose] = true;
          ahead.emplace(in.conv, std::move(*c));
          continue;
        }
      PlanStep step;
      step.node = static_cast<int>(i);
      step.label = nodes_[i].op_type;
      std::optional<Chain> c;
      if (auto it = ahead.find(static_cast<int>(i)); it != ahead.end()) c = std::move(it->second);
      else c = chain_from(static_cast<int>(i));
      if (c) {
        for (int j : c->fused) {
          absorbed[j] = true;
          step.label += "+" + nodes_[j].op_type;
        }
        if (c->in.pad >= 0) step.label = "Pad+" + step.label;
        if (c->in.transpose >= 0) step.label = "Transpose+" + step.label;
        step.pad = c->in.pad;
        step.transpose = c->in.transpose;
        step.x_channels_last = c->in.transpose >= 0;
        step.fused = c->fused;
        step.x = c->x;
        step.addend = c->addend;
        step.y = c->y;
        chains_.push_back(std::move(*c));
      }
      p.steps.push_back(std::move(step));
    }
    choose_layouts(p);
    choose_training_layouts(p);
    std::map<std::string, size_t> last_use;  // value -> index of the last step reading it
    for (size_t s = 0; s < p.steps.size(); ++s) {
      p.steps[s].reads = reads(p.steps[s]);
      p.steps[s].writes = writes(p.steps[s]);
      for (const std::string& v : p.steps[s].reads) last_use[v] = s;
    }
    place_in_arena(p, last_use);
    for (const std::string& v : graph_outputs_) last_use[v] = SIZE_MAX;  // returned by the run
    for (size_t s = 0; s < p.steps.size(); ++s)
      for (const std::string& v : p.steps[s].reads)
        if (last_use.at(v) == s && !r_.infos.at(v).constant.defined() &&
            std::find(p.steps[s].releases.begin(), p.steps[s].releases.end(), v) ==
                p.steps[s].releases.end())
          p.steps[s].releases.push_back(v);
    return p;
  }

 private:
  // Nodes before a Conv that its step can do: a Transpose from NHWC (the
  // step reads its input channels-last), then a zero Pad (the Conv pads).
  struct InputNodes {
    int conv = -1, pad = -1, transpose = -1;
  };

  // A Conv and what the plan fuses into it.
  struct Chain {
    Node conv;  // with a fused Pad's amounts added to its pads
    InputNodes in;
    std::string x;  // what the step reads
    Shape x_shape;  // its shape in NCHW order
    Tensor w, b;
    std::vector<backend::ConvPostOp> post;
    std::vector<int> fused;
    std::string addend, y;
    Tensor dw_w, dw_b;  // a depthwise convolution fused in as a post-op
    int64_t dw_stride = 1;
  };

  bool computed_ahead(const Node& n) const {
    for (const std::string& o : n.outputs)
      if (!o.empty() && !r_.infos.at(o).constant.defined()) return false;
    return true;
  }

  // The value of `name` when it is known ahead and never changes.
  const Tensor* constant(const std::string& name) const {
    if (name.empty() || r_.variables.count(name)) return nullptr;
    auto it = r_.infos.find(name);
    return it != r_.infos.end() && it->second.constant.defined() ? &it->second.constant : nullptr;
  }

  bool is_f32(const std::string& name) const { return r_.infos.at(name).dtype == DType::kF32; }

  // Whether node j, run by itself, is a GlobalAveragePool that can read its
  // input channels-last (backend::global_average_pool_channels_last).
  bool pools_channels_last(int j) const {
    const Node& n = nodes_[j];
    return n.op_type == "GlobalAveragePool" && !r_.alone[j] && n.outputs.size() == 1 &&
           is_f32(n.inputs[0]);
  }

  // The one node reading `value`, which is not a graph output.
  int only_reader(const std::string& value) const {
    auto it = readers_.find(value);
    if (graph_outputs_.count(value) || it == readers_.end() || it->second.size() != 1) return -1;
    return it->second[0];
  }

  // The one node reading `value`, when the value may stay inside a step.
  int sole_reader(const std::string& value) const {
    const int j = r_.outliving.count(value) ? -1 : only_reader(value);
    return j >= 0 && !r_.alone[j] ? j : -1;
  }

  // The Conv at `i` with what can be fused into it, when oneDNN has a fast
  // kernel for that.
  std::optional<Chain> chain_from(int i) const { return chain_from(i, InputNodes()); }
  std::optional<Chain> chain_from(int i, const InputNodes& in) const {
    const Node& conv = nodes_[i];
    if (conv.op_type != "Conv" || r_.alone[i] || conv.outputs.size() != 1 ||
        !is_f32(conv.inputs[0]))
      return std::nullopt;
    Chain c;
    c.conv = conv;
    c.in = in;
    c.x = conv.inputs[0];
    if (in.pad >= 0) {
      if (!add_padding(c.conv, nodes_[in.pad])) return std::nullopt;
      c.x = nodes_[in.pad].inputs[0];
    }
    c.x_shape = r_.infos.at(c.x).shape;
    if (in.transpose >= 0) c.x = nodes_[in.transpose].inputs[0];
    const Tensor* w = constant(conv.inputs[1]);
    const bool has_bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    const Tensor* b = has_bias ? constant(conv.inputs[2]) : nullptr;
    if (!w || (has_bias && !b)) return std::nullopt;
    c.w = *w;
    if (b) c.b = *b;
    std::string cur = conv.outputs[0];
    Chain before_dw;  // the chain as it was when a depthwise Conv joined
    for (int j; (j = sole_reader(cur)) >= 0;) {
      const Node& n = nodes_[j];
      if (n.outputs.size() != 1 || !is_f32(n.outputs[0])) break;
      if (n.op_type == "Conv" && !c.dw_w.defined()) {  // may join as a depthwise post-op
        before_dw = c;
        before_dw.y = cur;
      }
      if (!take(c, n, cur, i)) break;
      c.fused.push_back(j);
      cur = n.outputs[0];
    }
    c.y = cur;
    if (backend::make_fused_conv(spec_of(c, in.transpose >= 0, false))) return c;
    // oneDNN has no fast kernel with that depthwise post-op: stop before it.
    if (c.dw_w.defined() && backend::make_fused_conv(spec_of(before_dw, in.transpose >= 0, false)))
      return before_dw;
    return std::nullopt;
  }

  // The input nodes a Conv's step can take, starting at node `i`, when
  // each is the only reader of the one before: Transpose(0,3,1,2)?, zero
  // Pad?, Conv. `conv` is -1 when `i` starts no such sequence.
  InputNodes input_nodes_from(int i) const {
    InputNodes in;
    int at = i;
    if (nodes_[at].op_type == "Transpose" &&
        nodes_[at].attr_ints("perm") == std::vector<int64_t>{0, 3, 1, 2} &&
        r_.infos.at(nodes_[at].inputs[0]).shape.size() == 4 && !r_.alone[at]) {
      in.transpose = at;
      if ((at = sole_reader(nodes_[at].outputs[0])) < 0) return {};
    }
    if (nodes_[at].op_type == "Pad" && nodes_[at].outputs.size() == 1 && !r_.alone[at]) {
      in.pad = at;
      if ((at = sole_reader(nodes_[at].outputs[0])) < 0) return {};
    }
    const Node& conv = nodes_[at];
    if (at == i || conv.op_type != "Conv" || conv.inputs[0] != nodes_[in.pad >= 0 ? in.pad : in.transpose].outputs[0])
      return {};
    in.conv = at;
    return in;
  }

  // Adds the zero padding of `pad` to Conv `conv`'s pads; false when the Pad
  // is not that (another mode or value, batch or channel padding, cropping)
  // or the Conv pads by auto_pad.
  bool add_padding(Node& conv, const Node& pad) const {
    const int opset = r_.graph.opset;
    if (pad.attr_string("mode", "constant") != "constant") return false;
    const Tensor* amounts = nullptr;
    if (opset >= 11 && !(amounts = constant(pad.inputs.size() > 1 ? pad.inputs[1] : ""))) return false;
    float value = pad.attr_float("value", 0);
    if (opset >= 11 && pad.inputs.size() > 2 && !pad.inputs[2].empty()) {
      const Tensor* v = constant(pad.inputs[2]);
      if (!v || v->dtype() != DType::kF32 || v->numel() != 1) return false;
      value = v->data<float>()[0];
    }
    std::vector<int64_t> p = ops::pad_amounts(pad, opset, amounts);
    const size_t rank = r_.infos.at(pad.inputs[0]).shape.size();
    if (value != 0 || p.size() != 2 * rank || rank < 3) return false;
    const std::string auto_pad = conv.attr_string("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID") return false;
    const size_t spatial = rank - 2;
    std::vector<int64_t> conv_pads = conv.attr_ints("pads", std::vector<int64_t>(2 * spatial, 0));
    if (conv_pads.size() != 2 * spatial) return false;
    for (size_t d = 0; d < rank; ++d) {
      if (p[d] < 0 || p[d + rank] < 0 || (d < 2 && (p[d] != 0 || p[d + rank] != 0))) return false;
      if (d < 2) continue;
      conv_pads[d - 2] += p[d];
      conv_pads[d - 2 + spatial] += p[d + rank];
    }
    conv.attrs.erase("auto_pad");
    conv.attrs["pads"] = conv_pads;
    return true;
  }

  // A Clip's float32 bounds when they are known ahead.
  std::optional<std::pair<float, float>> clip_bounds(const Node& clip) const {
    std::vector<const Tensor*> bounds{nullptr};
    for (size_t k = 1; k < clip.inputs.size(); ++k) {
      bounds.push_back(constant(clip.inputs[k]));
      if (!clip.inputs[k].empty() && !bounds.back()) return std::nullopt;
    }
    return ops::clip_bounds_f32(clip, r_.graph.opset, bounds);
  }

  // Adds node `n`, which reads `cur`, to chain `c` of the Conv at `conv`.
  bool take(Chain& c, const Node& n, const std::string& cur, int conv) const {
    const bool after_dw = !c.post.empty() && c.post.back().depthwise;
    if (n.op_type == "BatchNormalization") {
      // Folded into the convolution it follows: the chain's own or its depthwise post-op.
      if ((!c.post.empty() && !after_dw) || n.inputs.size() != 5 ||
          n.attr_int("training_mode", 0) != 0)
        return false;
      Tensor& w = after_dw ? c.dw_w : c.w;
      Tensor& b = after_dw ? c.dw_b : c.b;
      const Tensor* p[5] = {};
      for (int k = 1; k < 5; ++k)
        if (!(p[k] = constant(n.inputs[k])) || p[k]->dtype() != DType::kF32 ||
            p[k]->numel() != w.dim(0))
          return false;
      std::tie(w, b) = fold_batch_norm(n, w, b.defined() ? &b : nullptr, *p[1], *p[2], *p[3], *p[4]);
      return true;
    }
    if (n.op_type == "Conv") return take_depthwise(c, n, cur);
    if (is_activation(n.op_type)) {
      backend::ConvPostOp op{&n};
      if (n.op_type == "Clip") {
        std::optional<std::pair<float, float>> bounds = clip_bounds(n);
        if (!bounds) return false;
        std::tie(op.clip_lo, op.clip_hi) = *bounds;
      }
      c.post.push_back(op);
      return true;
    }
    if (n.op_type == "Add" && c.addend.empty() && !c.dw_w.defined() && n.inputs.size() == 2 &&
        n.inputs[0] != n.inputs[1]) {
      const std::string& other = n.inputs[0] == cur ? n.inputs[1] : n.inputs[0];
      auto made = producer_.find(other);
      bool ready = made == producer_.end() || made->second < conv;  // before the fused step runs
      if (!ready || !is_f32(other) || r_.infos.at(other).shape != r_.infos.at(cur).shape) return false;
      c.post.push_back(backend::ConvPostOp{});
      c.addend = other;
      return true;
    }
    return false;
  }

  // A 3x3 depthwise Conv (padding 1, stride 1 or 2) reading a pointwise
  // one's output becomes its post-op when that output is large: oneDNN then
  // computes both a few rows at a time and the wide intermediate (six times
  // the block's channels in MobileNetV2) never goes to memory. Measured at
  // batch 32: the 112x112 stride-2 block 22 -> 8 ms, 56x56 8 -> 6 ms; for
  // small intermediates (batch 1, or 28x28 and below) its kernel is slower
  // than the two primitives apart, so those stay apart.
  bool take_depthwise(Chain& c, const Node& n, const std::string& cur) const {
    const Shape& x = r_.infos.at(cur).shape;
    if (!c.dw_w.defined() && c.addend.empty() && x.size() == 4 && c.w.rank() == 4 &&
        c.w.dim(2) == 1 && c.w.dim(3) == 1 && n.inputs[0] == cur &&
        shape_numel(x) * sizeof(float) >= depthwise_fusion_bytes()) {
      const int64_t channels = x[1];
      const Tensor* w = constant(n.inputs[1]);
      const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
      const Tensor* b = has_bias ? constant(n.inputs[2]) : nullptr;
      const std::vector<int64_t> strides = n.attr_ints("strides", {1, 1});
      const bool fits =
          w && w->dtype() == DType::kF32 && w->shape() == Shape{channels, 1, 3, 3} &&
          (!has_bias || (b && b->dtype() == DType::kF32 && b->numel() == channels)) &&
          n.attr_int("group", 1) == channels &&
          n.attr_string("auto_pad", "NOTSET") == "NOTSET" &&
          n.attr_ints("pads", {0, 0, 0, 0}) == std::vector<int64_t>{1, 1, 1, 1} &&
          n.attr_ints("dilations", {1, 1}) == std::vector<int64_t>{1, 1} &&
          strides.size() == 2 && strides[0] == strides[1] && (strides[0] == 1 || strides[0] == 2);
      if (fits) {
        c.dw_w = *w;
        c.dw_b = b ? *b : Tensor(DType::kF32, {channels});
        c.dw_stride = strides[0];
        backend::ConvPostOp op;
        op.depthwise = true;
        c.post.push_back(op);
        return true;
      }
    }
    return false;
  }

  backend::FusedConvSpec spec_of(const Chain& c, bool x_cl, bool y_cl) const {
    backend::FusedConvSpec s;
    s.conv = c.conv;
    s.x = c.x_shape;
    s.weights = c.w;
    s.bias = c.b;
    s.post = c.post;
    s.dw_weights = c.dw_w;
    s.dw_bias = c.dw_b;
    s.dw_stride = c.dw_stride;
    s.x_channels_last = x_cl;
    s.y_channels_last = y_cl;
    return s;
  }

  // A BatchNormalization normalising with the batch's statistics, when the
  // fast kernels take it, with the Clip or Relu alone reading its output if
  // there is one, and (may_pool) a GlobalAveragePool alone reading that.
  // Alone it is a step too: its backward then reads the statistics the
  // forward kept instead of computing them again.
  std::optional<PlanStep> norm_activation_step(int i, bool may_pool = true) const {
    const Node& bn = nodes_[i];
    if (bn.op_type != "BatchNormalization" || !r_.batch_statistics[i] || bn.inputs.size() != 5)
      return std::nullopt;
    for (size_t k = 1; k < bn.outputs.size(); ++k)
      if (!bn.outputs[k].empty()) return std::nullopt;
    const ValueInfo& x = r_.infos.at(bn.inputs[0]);
    if (!backend::fuses_norm_activation(x.shape, x.dtype)) return std::nullopt;
    for (int k = 1; k < 5; ++k) {
      const ValueInfo& v = r_.infos.at(bn.inputs[k]);
      if (v.dtype != DType::kF32 || shape_numel(v.shape) != x.shape[1]) return std::nullopt;
    }
    // The running statistics are updated in place.
    if (!r_.variables.count(bn.inputs[3]) || !r_.variables.count(bn.inputs[4])) return std::nullopt;
    const float inf = std::numeric_limits<float>::infinity();
    PlanStep s;
    s.node = i;
    s.norm_activation = backend::NormActivation{bn.attr_float("epsilon", 1e-5f),
                                                bn.attr_float("momentum", 0.9f), -inf, inf};
    s.label = "BatchNormalization";
    const std::string& y = bn.outputs[0];
    const int j = only_reader(y);
    if (j < 0) return s;
    const Node& act = nodes_[j];
    if (act.inputs[0] != y || act.outputs.size() != 1 || act.outputs[0].empty()) return s;
    std::pair<float, float> bounds{0, inf};
    if (act.op_type == "Clip") {
      std::optional<std::pair<float, float>> clip = clip_bounds(act);
      if (!clip || !(clip->first <= clip->second)) return s;
      bounds = *clip;
    } else if (act.op_type != "Relu") {
      return s;
    }
    std::tie(s.norm_activation->lo, s.norm_activation->hi) = bounds;
    s.fused = {j};
    s.label += "+" + act.op_type;
    // A GlobalAveragePool alone reading the activation: the step writes the
    // means, and the activation's output is never stored.
    const int g = may_pool ? only_reader(act.outputs[0]) : -1;
    if (g >= 0 && nodes_[g].op_type == "GlobalAveragePool" && nodes_[g].outputs.size() == 1 &&
        nodes_[g].inputs[0] == act.outputs[0]) {
      s.norm_activation->pools = true;
      s.fused.push_back(g);
      s.label += "+GlobalAveragePool";
    }
    return s;
  }

  // Two BatchNormalization+activation steps with a depthwise Conv between
  // them, the Conv alone reading the first and alone read by the second
  // (reads in the order of NormDepthwiseRead).
  std::optional<PlanStep> norm_depthwise_step(int i) const {
    std::optional<PlanStep> before = norm_activation_step(i, false);
    if (!before || before->fused.size() != 1) return std::nullopt;
    const int c = only_reader(nodes_[before->fused[0]].outputs[0]);
    if (c < 0) return std::nullopt;
    const Node& conv = nodes_[c];
    const bool bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    if (conv.op_type != "Conv" || conv.inputs.size() < 2 || conv.outputs.size() != 1 ||
        conv.inputs[0] != nodes_[before->fused[0]].outputs[0])
      return std::nullopt;
    for (size_t k = 1; k < conv.inputs.size(); ++k) {
      const std::string& in = conv.inputs[k];
      if (!in.empty() && (!r_.graph.initializers.count(in) || !is_f32(in))) return std::nullopt;
    }
    if (!backend::fuses_norm_depthwise(conv, r_.infos.at(conv.inputs[0]).shape,
                                       r_.infos.at(conv.inputs[1]).shape, bias))
      return std::nullopt;
    const int bn = only_reader(conv.outputs[0]);
    std::optional<PlanStep> after = bn < 0 ? std::nullopt : norm_activation_step(bn, false);
    if (!after || after->fused.size() != 1) return std::nullopt;
    for (int k = 1; k < 5; ++k)  // the second's parameters exist before the step runs
      if (!r_.graph.initializers.count(nodes_[bn].inputs[k])) return std::nullopt;
    PlanStep s;
    s.node = i;
    s.fused = {before->fused[0], c, bn, after->fused[0]};
    s.norm_depthwise =
        backend::NormDepthwise{*before->norm_activation, *after->norm_activation, conv};
    s.label = before->label + "+depthwise Conv+" + after->label;
    return s;
  }

  std::vector<std::string> writes(const PlanStep& s) const {
    if (!s.y.empty()) return {s.y};
    std::vector<std::string> v;
    for (const std::string& out : nodes_[s.fused.empty() ? s.node : s.fused.back()].outputs)
      if (!out.empty()) v.push_back(out);
    return v;
  }

  std::vector<std::string> reads(const PlanStep& s) const {
    if (!s.y.empty()) {
      std::vector<std::string> v{s.x};
      if (!s.addend.empty()) v.push_back(s.addend);
      return v;
    }
    std::vector<std::string> v;
    auto add = [&](const Node& n, size_t from) {
      for (size_t k = from; k < n.inputs.size(); ++k)
        if (!n.inputs[k].empty()) v.push_back(n.inputs[k]);
    };
    add(nodes_[s.node], 0);
    if (s.norm_depthwise) {
      add(nodes_[s.fused[2]], 1);
      add(nodes_[s.fused[1]], 1);
    }
    return v;
  }

  // A fused step's output is stored channels-last when every node reading
  // it is part of a fused step reading it as its input or its addend; a step's
  // addend and output share a layout. Then the fused convolutions are made
  // for their layouts; one oneDNN cannot make that way has its values
  // stored NCHW, and the layouts are chosen again.
  void choose_layouts(ExecutionPlan& p) {
    std::map<int, const PlanStep*> step_of_node;  // fused steps by each node they compute
    for (const PlanStep& s : p.steps)
      if (!s.y.empty()) {
        step_of_node[s.node] = &s;
        for (int j : s.fused) step_of_node[j] = &s;
        if (s.pad >= 0) step_of_node[s.pad] = &s;
        if (s.transpose >= 0) step_of_node[s.transpose] = &s;
      }
    std::set<std::string> plain;  // values that must stay NCHW
    for (;;) {
      std::set<std::string> cl;
      for (const PlanStep& s : p.steps) {
        auto readers = readers_.find(s.y);  // none: an unused value
        if (s.y.empty() || plain.count(s.y) || graph_outputs_.count(s.y) ||
            r_.outliving.count(s.y) || r_.infos.at(s.y).shape.size() != 4 ||
            readers == readers_.end())
          continue;
        bool all_fused = true;
        for (int reader : readers->second) {
          auto it = step_of_node.find(reader);
          all_fused = all_fused && ((it != step_of_node.end() &&
                                     (it->second->x == s.y || it->second->addend == s.y)) ||
                                    pools_channels_last(reader));
        }
        if (all_fused) cl.insert(s.y);
      }
      for (bool changed = true; changed;) {
        changed = false;
        for (const PlanStep& s : p.steps)
          if (!s.addend.empty() && cl.count(s.addend) != cl.count(s.y))
            changed |= cl.erase(s.addend) + cl.erase(s.y) > 0;
      }
      bool made = true;
      size_t chain = 0;
      for (PlanStep& s : p.steps) {
        if (s.y.empty()) continue;
        bool x_cl = s.x_channels_last || cl.count(s.x), y_cl = cl.count(s.y);
        s.conv = backend::make_fused_conv(spec_of(chains_[chain++], x_cl, y_cl));
        if (!s.conv) {
          made = false;
          plain.insert({s.x, s.y, s.addend});
        }
      }
      if (made) {
        p.channels_last = cl;
        for (PlanStep& s : p.steps)
          if (s.y.empty() && pools_channels_last(s.node) && cl.count(nodes_[s.node].inputs[0]))
            s.x_channels_last = true;
        return;
      }
    }
  }

  // Training: a value between a pointwise Conv and a depthwise step that
  // both can work channels-last, the one alone reading what the other writes,
  // is stored channels-last (and so is its gradient): at 7x7 and batch 32
  // that spares a reorder on one side and a gather or scatter of the
  // step's tiles on the other, forward and backward.
  void choose_training_layouts(ExecutionPlan& p) const {
    std::map<int, PlanStep*> conv_steps;  // a Conv run by itself, by node
    for (PlanStep& s : p.steps)
      if (s.y.empty() && s.fused.empty() && nodes_[s.node].op_type == "Conv")
        conv_steps[s.node] = &s;
    auto serving_conv = [&](int j) -> PlanStep* {
      auto it = conv_steps.find(j);
      if (it == conv_steps.end()) return nullptr;
      const Node& conv = nodes_[j];
      const bool bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
      if (!is_f32(conv.inputs[0]) || !is_f32(conv.inputs[1]) || (bias && !is_f32(conv.inputs[2])) ||
          !backend::serves_conv_layout(conv, r_.infos.at(conv.inputs[0]).shape,
                                       r_.infos.at(conv.inputs[1]).shape, bias))
        return nullptr;
      if (!it->second->conv_layout) it->second->conv_layout = backend::ConvLayout{};
      return it->second;
    };
    for (PlanStep& s : p.steps) {
      if (!s.norm_depthwise) continue;
      const Node& dw = nodes_[s.fused[1]];
      const bool bias = dw.inputs.size() > 2 && !dw.inputs[2].empty();
      if (!backend::norm_depthwise_channels_last(dw, r_.infos.at(dw.inputs[0]).shape,
                                                 r_.infos.at(dw.inputs[1]).shape, bias))
        continue;
      const std::string& x = nodes_[s.node].inputs[0];
      auto made = producer_.find(x);
      if (made != producer_.end() && only_reader(x) == s.node)
        if (PlanStep* conv = serving_conv(made->second)) {
          conv->conv_layout->y_channels_last = s.norm_depthwise->x_channels_last = true;
          p.channels_last.insert(x);
        }
      const std::string& y = nodes_[s.fused.back()].outputs[0];
      const int reader = only_reader(y);
      if (reader >= 0 && nodes_[reader].inputs[0] == y)
        if (PlanStep* conv = serving_conv(reader)) {
          conv->conv_layout->x_channels_last = s.norm_depthwise->y_channels_last = true;
          p.channels_last.insert(y);
        }
    }
  }

  // Greedy placement, largest first, at the lowest offset free for the
  // value's whole lifetime. A fused step's output takes the place of an
  // addend that no later step reads: the convolution then adds into it
  // where it lies instead of copying it there first.
  void place_in_arena(ExecutionPlan& p, const std::map<std::string, size_t>& last_use) const {
    struct Block {
      std::string name;
      size_t size, first, last, offset = 0;
    };
    std::vector<Block> blocks;
    std::map<std::string, size_t> block_of;
    std::map<std::string, std::string> in_place_of;  // an output -> the block it overwrites
    for (size_t s = 0; s < p.steps.size(); ++s) {
      const PlanStep& step = p.steps[s];
      for (const std::string& v : step.writes) {
        if (graph_outputs_.count(v) || r_.outliving.count(v)) continue;
        auto read_last = last_use.find(v);
        const size_t last = read_last == last_use.end() ? s : read_last->second;
        if (v == step.y && !step.addend.empty() && step.addend != step.x &&
            last_use.at(step.addend) == s)
          if (auto a = block_of.find(step.addend); a != block_of.end()) {
            Block& b = blocks[a->second];
            b.last = std::max(b.last, last);
            block_of[v] = a->second;
            in_place_of[v] = b.name;
            continue;
          }
        const ValueInfo& info = r_.infos.at(v);
        size_t bytes = static_cast<size_t>(shape_numel(info.shape)) * dtype_size(info.dtype);
        block_of[v] = blocks.size();
        blocks.push_back({v, std::max<size_t>(64, (bytes + 63) / 64 * 64), s, last});
      }
    }
    std::stable_sort(blocks.begin(), blocks.end(),
                     [](const Block& a, const Block& b) { return a.size > b.size; });
    std::vector<const Block*> placed;
    for (Block& b : blocks) {
      std::vector<const Block*> overlapping;
      for (const Block* o : placed)
        if (o->first <= b.last && b.first <= o->last) overlapping.push_back(o);
      std::sort(overlapping.begin(), overlapping.end(),
                [](const Block* x, const Block* y) { return x->offset < y->offset; });
      size_t offset = 0;
      for (const Block* o : overlapping)
        if (offset + b.size <= o->offset) break;
        else offset = std::max(offset, o->offset + o->size);
      b.offset = offset;
      placed.push_back(&b);
      p.offsets[b.name] = offset;
      p.arena_bytes = std::max(p.arena_bytes, offset + b.size);
    }
    for (const auto& [v, block] : in_place_of) p.offsets[v] = p.offsets.at(block);
  }

  const PlanRequest& r_;
  const std::vector<Node>& nodes_;
  std::map<std::string, std::vector<int>> readers_;
  std::map<std::string, int> producer_;
  std::set<std::string> graph_outputs_;
  std::vector<Chain> chains_;  // one per fused step, in order
};

}  // namespace

ExecutionPlan make_plan(const PlanRequest& request) { return Planner(request).plan(); }

backend::NormDepthwiseInputs norm_depthwise_inputs(
    const PlanStep& step, const std::function<const Tensor&(const std::string&)>& value) {
  auto at = [&](size_t k) { return k < step.reads.size() ? &value(step.reads[k]) : nullptr; };
  return {at(kNdX),       at(kNdScale1), at(kNdShift1), at(kNdWeights),
          at(kNdBias),    at(kNdScale2), at(kNdShift2)};
}

size_t depthwise_fusion_bytes() { return g_depthwise_fusion_bytes; }
void set_depthwise_fusion_bytes(size_t bytes) { g_depthwise_fusion_bytes = bytes; }

}  // namespace graft
