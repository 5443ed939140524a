// Graph rewrites that keep what a graph computes (up to float rounding).
#pragma once

#include <utility>

#include "graft/graph.h"

namespace graft {

// Folds each inference-mode BatchNormalization that directly follows a
// Conv (whose output feeds nothing else) into that Conv's weight and bias.
// New tensors are made for the folded weights, so graphs that share
// initializers with this one are not changed. Returns how many were folded.
int fold_batch_norms(Graph& graph);

// The weight and bias of Conv(w, b) followed by the inference-mode
// BatchNormalization `bn` with these parameters (one per output channel),
// as new tensors. `b` may be nullptr (no bias).
std::pair<Tensor, Tensor> fold_batch_norm(const Node& bn, const Tensor& w, const Tensor* b,
                                          const Tensor& scale, const Tensor& shift,
                                          const Tensor& mean, const Tensor& var);

}  // namespace graft
