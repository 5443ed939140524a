// The training loop: epochs of shuffled mini-batches through a Session
// (forward, loss, backward, optimizer step), evaluation after every epoch,
// the best epoch's weights kept, early stopping, and an atomic checkpoint
// after every epoch from which a killed run resumes exactly.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graft/loss.h"
#include "graft/metrics.h"
#include "graft/optim.h"
#include "graft/session.h"

namespace graft {

struct FitOptions {
  int64_t epochs = 10;
  int64_t batch = 32;
  uint64_t seed = 0;            // shuffling and dropout
  std::string optimizer = "adam";  // "sgd", "adam", "adamw"
  float lr = 1e-3f;
  float momentum = 0.9f;        // sgd
  bool nesterov = false;        // sgd
  float weight_decay = 0;
  Schedule schedule;            // its base_lr is replaced by lr; steps are optimizer steps
  double clip_norm = 0;         // > 0: clip gradients to this global norm
  CrossEntropyOptions loss;
  int early_stop = 0;           // stop after this many epochs without a better accuracy (0: never)
  std::string checkpoint;       // written after every epoch ("": none)
  bool resume = false;          // continue from `checkpoint` if it exists
  // Stored unchanged in every checkpoint (e.g. the whole model, so that
  // `graft export` can rebuild it from the checkpoint alone).
  std::map<std::string, Tensor> checkpoint_extras;
};

struct EpochRecord {
  int64_t epoch = 0;            // 1-based
  int64_t step = 0;             // optimizer steps so far
  double train_loss = 0;
  double train_accuracy = 0;
  double eval_loss = 0;
  double eval_accuracy = 0;
  float lr = 0;                 // at the epoch's last step
  double seconds = 0;
};

struct FitProgress {
  int64_t epoch = 0, epochs = 0;
  int64_t batch = 0, batches = 0;
  double loss = 0;              // running mean over the epoch so far
  float lr = 0;
  double samples_per_second = 0;
  double eta_seconds = 0;       // for this epoch
};

struct FitCallbacks {
  std::function<void(const FitProgress&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
};

struct FitResult {
  std::vector<EpochRecord> history;
  int64_t best_epoch = 0;       // 1-based; its weights are in the session at the end
  Evaluation best;              // evaluation of the best epoch
  bool stopped_early = false;
  bool resumed = false;
};

// Trains `model` (one input, one output of logits [N, classes]; the
// trainable parameters are the graph's) on rows of `train_x` with
// `train_y`, evaluating on `eval_x`/`eval_y` after each epoch. A non-finite
// loss stops with an error naming the step; the last checkpoint stays.
FitResult fit(Session& model, const Tensor& train_x, const std::vector<int64_t>& train_y,
              const Tensor& eval_x, const std::vector<int64_t>& eval_y, const FitOptions& options,
              const FitCallbacks& callbacks = {});

// Runs `model` in inference mode over the rows of `x` in batches; returns
// the concatenated output [N, ...].
Tensor predict(Session& model, const Tensor& x, int64_t batch = 64);

// Rows `indices` of x (along the first axis).
Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& indices);

}  // namespace graft
