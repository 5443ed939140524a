// Graph rewrites that keep what a graph computes (up to float rounding).
#pragma once

#include "graft/graph.h"

namespace graft {

// Folds each inference-mode BatchNormalization that directly follows a
// Conv (whose output feeds nothing else) into that Conv's weight and bias.
// New tensors are made for the folded weights, so graphs that share
// initializers with this one are not changed. Returns how many were folded.
int fold_batch_norms(Graph& graph);

}  // namespace graft
