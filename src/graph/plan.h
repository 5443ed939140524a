// A Session's execution plan for one set of input shapes and one mode,
// compiled once and reused by every run:
// - the steps in order: single nodes, or a Conv of the frozen part fused
//   with the BatchNormalization, activations and residual Add after it
//   (one oneDNN primitive, weights reordered once), or in training a
//   BatchNormalization using batch statistics with the Clip or Relu after
//   it (backend::NormActivation), or two of those with the depthwise Conv
//   between them (backend::NormDepthwise);
// - which values are stored channels-last (between fused convolutions, so
//   a chain of them needs no reorder; in training, between a pointwise Conv
//   and a depthwise step on small planes, backend::ConvLayout);
// - where each value lives in one arena whose offsets are planned ahead from
//   the values' lifetimes, so a run allocates only what outlives it (graph
//   outputs, values backward() reads).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "graft/session.h"

namespace graft {

struct PlanStep {
  int node = -1;          // index in graph.nodes: the node run, or the fused Conv
  std::vector<int> fused;  // nodes after it that this step computes too
  int pad = -1;            // a Pad before it whose padding the Conv does
  int transpose = -1;      // a Transpose from NHWC before it: x is read channels-last
  bool x_channels_last = false;  // x is stored channels-last (a fused step's, or a GlobalAveragePool's)
  std::shared_ptr<backend::FusedConv> conv;  // set for a fused step
  std::string x, addend, y;                  // a fused step's input, addend ("" if none), output
  std::optional<backend::NormActivation> norm_activation;  // set for a fused training BatchNormalization
  std::optional<backend::NormDepthwise> norm_depthwise;    // set for BatchNormalization+activation,
                                                           // depthwise Conv, BatchNormalization+activation
  std::optional<backend::ConvLayout> conv_layout;  // set for a training Conv reading or writing
                                                   // a value stored channels-last
  std::string label;                         // for the profile: "Conv+BatchNormalization+Clip"
  std::vector<std::string> reads;            // the values the step reads
  std::vector<std::string> writes;           // and those it writes
  std::vector<std::string> releases;         // what no later step reads (its arena slice is then reused)
};

struct ExecutionPlan {
  std::vector<PlanStep> steps;
  std::set<std::string> channels_last;
  std::map<std::string, size_t> offsets;  // arena values: byte offset
  size_t arena_bytes = 0;
  std::shared_ptr<uint8_t> arena;          // allocated by the Session
  bool fast_kernels = false;               // made with oneDNN's kernels on
  // Training: the batch statistics of each fused BatchNormalization, and
  // what each fused depthwise step keeps (by node), from run() for
  // backward().
  std::map<int, backend::BatchStatistics> norm_statistics;
  std::map<int, backend::NormDepthwiseStatistics> depthwise_statistics;
};

struct PlanRequest {
  const Graph& graph;
  const std::map<std::string, ValueInfo>& infos;
  const std::set<std::string>& variables;  // initializers that change between runs
  std::vector<bool> alone;                 // per node: must run by itself (training)
  std::vector<bool> batch_statistics;      // per node: a BatchNormalization normalising with
                                           // the batch's statistics (training)
  std::set<std::string> outliving;         // values that must outlive a run
};

ExecutionPlan make_plan(const PlanRequest& request);

// A norm_depthwise step's reads, in order (the bias is last, when there is one).
enum NormDepthwiseRead { kNdX, kNdScale1, kNdShift1, kNdMean1, kNdVar1, kNdScale2, kNdShift2,
                         kNdMean2, kNdVar2, kNdWeights, kNdBias };
// A norm_depthwise step's inputs, from the values by name.
backend::NormDepthwiseInputs norm_depthwise_inputs(
    const PlanStep& step, const std::function<const Tensor&(const std::string&)>& value);

// How large (bytes) a pointwise convolution's output must be for a
// depthwise convolution reading it to be fused in (40 MiB); tests lower it.
size_t depthwise_fusion_bytes();
void set_depthwise_fusion_bytes(size_t bytes);

}  // namespace graft
