// Training checkpoints: parameters, running statistics, optimizer state,
// progress and random-generator state in one file, written atomically, so
// a run killed at any moment resumes exactly from its last checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "graft/graph.h"
#include "graft/tensor.h"

namespace graft {

struct Checkpoint {
  std::string graph_fingerprint;            // which graph the tensors belong to
  int64_t step = 0;                         // optimizer steps taken
  int64_t epoch = 0;                        // epochs completed
  std::map<std::string, std::string> info;  // e.g. random-generator state, settings
  std::map<std::string, Tensor> tensors;    // "param/...", "state/...", "optim/..."
};

// A digest of the graph's structure and of its parameters' names and
// shapes (not their values): a checkpoint only loads into the graph it came from.
std::string graph_fingerprint(const Graph& graph);

// Writes atomically (temporary file, flush, rename): a crash leaves the
// previous checkpoint intact.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads a checkpoint; kCorruption naming the file if it is truncated or
// malformed (sizes are checked before anything is allocated).
Checkpoint load_checkpoint(const std::string& path);

}  // namespace graft
