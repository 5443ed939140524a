#include "graph/plan.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "graft/passes.h"
#include "ops/op.h"

namespace graft {

namespace {

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
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (absorbed[i] || computed_ahead(nodes_[i])) continue;
      PlanStep step;
      step.node = static_cast<int>(i);
      step.label = nodes_[i].op_type;
      if (std::optional<Chain> c = chain_from(static_cast<int>(i))) {
        for (int j : c->fused) {
          absorbed[j] = true;
          step.label += "+" + nodes_[j].op_type;
        }
        step.fused = c->fused;
        step.x = nodes_[i].inputs[0];
        step.addend = c->addend;
        step.y = c->y;
        chains_.push_back(std::move(*c));
      }
      p.steps.push_back(std::move(step));
    }
    choose_layouts(p);
    for (size_t s = 0; s < p.steps.size(); ++s)
      for (const std::string& v : reads(p.steps[s])) p.last_use[v] = s;
    place_in_arena(p);
    for (const std::string& v : graph_outputs_) p.last_use[v] = SIZE_MAX;  // returned by the run
    return p;
  }

 private:
  // A Conv and what the plan fuses into it.
  struct Chain {
    Tensor w, b;
    std::vector<backend::ConvPostOp> post;
    std::vector<int> fused;
    std::string addend, y;
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

  // The one node reading `value`, when the value may stay inside a step.
  int sole_reader(const std::string& value) const {
    if (graph_outputs_.count(value) || r_.outliving.count(value)) return -1;
    auto it = readers_.find(value);
    if (it == readers_.end() || it->second.size() != 1 || r_.alone[it->second[0]]) return -1;
    return it->second[0];
  }

  // The Conv at `i` with what can be fused into it, when oneDNN has a fast
  // kernel for that.
  std::optional<Chain> chain_from(int i) const {
    const Node& conv = nodes_[i];
    if (conv.op_type != "Conv" || r_.alone[i] || conv.outputs.size() != 1 ||
        !is_f32(conv.inputs[0]))
      return std::nullopt;
    const Tensor* w = constant(conv.inputs[1]);
    const bool has_bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    const Tensor* b = has_bias ? constant(conv.inputs[2]) : nullptr;
    if (!w || (has_bias && !b)) return std::nullopt;
    Chain c;
    c.w = *w;
    if (b) c.b = *b;
    std::string cur = conv.outputs[0];
    for (int j; (j = sole_reader(cur)) >= 0;) {
      const Node& n = nodes_[j];
      if (n.outputs.size() != 1 || !is_f32(n.outputs[0])) break;
      if (!take(c, n, cur, i)) break;
      c.fused.push_back(j);
      cur = n.outputs[0];
    }
    c.y = cur;
    backend::FusedConvSpec spec = spec_of(i, c, false, false);
    if (!backend::make_fused_conv(spec)) return std::nullopt;
    return c;
  }

  // Adds node `n`, which reads `cur`, to chain `c` of the Conv at `conv`.
  bool take(Chain& c, const Node& n, const std::string& cur, int conv) const {
    if (n.op_type == "BatchNormalization") {
      if (!c.post.empty() || n.inputs.size() != 5 || n.attr_int("training_mode", 0) != 0)
        return false;
      const Tensor* p[5] = {};
      for (int k = 1; k < 5; ++k)
        if (!(p[k] = constant(n.inputs[k])) || p[k]->dtype() != DType::kF32 ||
            p[k]->numel() != c.w.dim(0))
          return false;
      auto [w, b] = fold_batch_norm(n, c.w, c.b.defined() ? &c.b : nullptr, *p[1], *p[2], *p[3], *p[4]);
      c.w = w;
      c.b = b;
      return true;
    }
    if (is_activation(n.op_type)) {
      backend::ConvPostOp op{&n};
      if (n.op_type == "Clip") {
        std::vector<const Tensor*> bounds{nullptr};
        for (size_t k = 1; k < n.inputs.size(); ++k) {
          bounds.push_back(constant(n.inputs[k]));
          if (!n.inputs[k].empty() && !bounds.back()) return false;
        }
        std::tie(op.clip_lo, op.clip_hi) = ops::clip_bounds_f32(n, r_.graph.opset, bounds);
      }
      c.post.push_back(op);
      return true;
    }
    if (n.op_type == "Add" && c.addend.empty() && n.inputs.size() == 2 && n.inputs[0] != n.inputs[1]) {
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

  backend::FusedConvSpec spec_of(int conv, const Chain& c, bool x_cl, bool y_cl) const {
    backend::FusedConvSpec s;
    s.conv = &nodes_[conv];
    s.x = r_.infos.at(nodes_[conv].inputs[0]).shape;
    s.weights = c.w;
    s.bias = c.b;
    s.post = c.post;
    s.x_channels_last = x_cl;
    s.y_channels_last = y_cl;
    return s;
  }

  std::vector<std::string> reads(const PlanStep& s) const {
    if (!s.y.empty()) {
      std::vector<std::string> v{s.x};
      if (!s.addend.empty()) v.push_back(s.addend);
      return v;
    }
    std::vector<std::string> v;
    for (const std::string& in : nodes_[s.node].inputs)
      if (!in.empty()) v.push_back(in);
    return v;
  }

  // A fused step's output is stored channels-last when every node reading
  // it is a fused step reading it as its input or its addend; a step's
  // addend and output share a layout. Then the fused convolutions are made
  // for their layouts; one oneDNN cannot make that way has its values
  // stored NCHW, and the layouts are chosen again.
  void choose_layouts(ExecutionPlan& p) {
    std::map<int, const PlanStep*> step_of_node;  // fused steps by each node they compute
    for (const PlanStep& s : p.steps)
      if (!s.y.empty()) {
        step_of_node[s.node] = &s;
        for (int j : s.fused) step_of_node[j] = &s;
      }
    std::set<std::string> plain;  // values that must stay NCHW
    for (;;) {
      std::set<std::string> cl;
      for (const PlanStep& s : p.steps) {
        if (s.y.empty() || plain.count(s.y) || graph_outputs_.count(s.y) ||
            r_.outliving.count(s.y) || r_.infos.at(s.y).shape.size() != 4)
          continue;
        bool all_fused = true;
        for (int reader : readers_.at(s.y)) {
          auto it = step_of_node.find(reader);
          all_fused = all_fused && it != step_of_node.end() &&
                      ((it->second->node == reader && it->second->x == s.y) ||
                       (it->second->node != reader && it->second->addend == s.y));
        }
        if (all_fused && readers_.count(s.y)) cl.insert(s.y);
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
        bool x_cl = cl.count(s.x), y_cl = cl.count(s.y);
        s.conv = backend::make_fused_conv(spec_of(s.node, chains_[chain++], x_cl, y_cl));
        if (!s.conv) {
          made = false;
          plain.insert({s.x, s.y, s.addend});
        }
      }
      if (made) {
        p.channels_last = cl;
        return;
      }
    }
  }

  // Greedy placement, largest first, at the lowest offset free for the
  // value's whole lifetime.
  void place_in_arena(ExecutionPlan& p) const {
    struct Block {
      std::string name;
      size_t size, first, last, offset = 0;
    };
    std::vector<Block> blocks;
    for (size_t s = 0; s < p.steps.size(); ++s) {
      std::vector<std::string> made;
      if (!p.steps[s].y.empty()) made.push_back(p.steps[s].y);
      else
        for (const std::string& o : nodes_[p.steps[s].node].outputs)
          if (!o.empty()) made.push_back(o);
      for (const std::string& v : made) {
        if (graph_outputs_.count(v) || r_.outliving.count(v)) continue;
        const ValueInfo& info = r_.infos.at(v);
        size_t bytes = static_cast<size_t>(shape_numel(info.shape)) * dtype_size(info.dtype);
        auto last = p.last_use.find(v);
        blocks.push_back({v, std::max<size_t>(64, (bytes + 63) / 64 * 64), s,
                          last == p.last_use.end() ? s : last->second});
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

}  // namespace graft
