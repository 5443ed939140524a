#include "graft/passes.h"

#include <cmath>

namespace graft {

namespace {

int consumers(const Graph& g, const std::string& value) {
  int n = 0;
  for (const Node& node : g.nodes)
    for (const std::string& in : node.inputs) n += in == value;
  for (const ValueDecl& out : g.outputs) n += out.name == value;
  return n;
}

bool all_initializers(const Graph& g, const Node& n, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i)
    if (i >= n.inputs.size() || !g.is_initializer(n.inputs[i]) ||
        g.initializers.at(n.inputs[i]).dtype() != DType::kF32)
      return false;
  return true;
}

}  // namespace

std::pair<Tensor, Tensor> fold_batch_norm(const Node& bn, const Tensor& w, const Tensor* b,
                                          const Tensor& scale, const Tensor& shift,
                                          const Tensor& mean, const Tensor& var) {
  const int64_t out_channels = w.dim(0);
  const double eps = bn.attr_float("epsilon", 1e-5f);
  Tensor new_w = w.clone();
  Tensor new_b(DType::kF32, {out_channels});
  const int64_t per_channel = w.numel() / out_channels;
  for (int64_t c = 0; c < out_channels; ++c) {
    double k = scale.data<float>()[c] / std::sqrt(static_cast<double>(var.data<float>()[c]) + eps);
    float* wc = new_w.data<float>() + c * per_channel;
    for (int64_t j = 0; j < per_channel; ++j) wc[j] = static_cast<float>(wc[j] * k);
    new_b.data<float>()[c] = static_cast<float>(
        ((b ? b->data<float>()[c] : 0.0) - mean.data<float>()[c]) * k + shift.data<float>()[c]);
  }
  return {new_w, new_b};
}

int fold_batch_norms(Graph& graph) {
  int folded = 0;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& bn = graph.nodes[i];
    if (bn.op_type != "BatchNormalization" || bn.attr_int("training_mode", 0) != 0 ||
        bn.outputs.size() != 1 || !all_initializers(graph, bn, 1, 5))
      continue;
    Node* conv = const_cast<Node*>(graph.producer(bn.inputs[0]));
    if (!conv || conv->op_type != "Conv" || consumers(graph, bn.inputs[0]) != 1 ||
        !all_initializers(graph, *conv, 1, conv->inputs.size()))
      continue;
    const Tensor& w = graph.initializers.at(conv->inputs[1]);
    if (graph.initializers.at(bn.inputs[1]).numel() != w.dim(0)) continue;  // per-activation (spatial=0)
    const Tensor* old_b = conv->inputs.size() > 2 ? &graph.initializers.at(conv->inputs[2]) : nullptr;
    auto param = [&](int k) -> const Tensor& { return graph.initializers.at(bn.inputs[k]); };
    auto [new_w, new_b] = fold_batch_norm(bn, w, old_b, param(1), param(2), param(3), param(4));
    const std::string w_name = bn.name + "/folded_weight", b_name = bn.name + "/folded_bias";
    graph.initializers[w_name] = new_w;
    graph.initializers[b_name] = new_b;
    conv->inputs.resize(3);
    conv->inputs[1] = w_name;
    conv->inputs[2] = b_name;
    conv->outputs[0] = bn.outputs[0];
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    --i;
    ++folded;
  }
  // Drop initializers nothing reads any more.
  std::set<std::string> used;
  for (const Node& n : graph.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (const ValueDecl& o : graph.outputs) used.insert(o.name);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    if (used.count(it->first)) ++it;
    else {
      graph.trainable.erase(it->first);
      it = graph.initializers.erase(it);
    }
  }
  return folded;
}

}  // namespace graft
