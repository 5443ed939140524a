// The seed's job in one call: load a pretrained model, cut it, keep the trunk
// frozen (or unfreeze its last blocks), compute the frozen part's features
// once, train a new head on them, evaluate, and give back the fine-tuned
// model ready to export.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graft/dataset.h"
#include "graft/fit.h"
#include "graft/graph.h"
#include "graft/image.h"
#include "graft/surgery.h"

namespace graft {

// Loads a model by file type: ONNX (.onnx) or a TF.js layers model (.json).
Graph load_model(const std::string& path);

// How images must be prepared for `model`: a model graft exported says so
// exactly (metadata graft.preprocess); otherwise its input size, layout
// (NHWC for TF.js models) and value range come from the metadata
// graft.input_layout and graft.input_range and its input shape; without
// them, the seed's recipe: 224×224, (x - 127.5) / 127.5.
Preprocess preprocess_for(const Graph& model);

std::string preprocess_to_json(const Preprocess& p);
Preprocess preprocess_from_json(const std::string& json);

// The model as served: `logits_model` with a Softmax output
// ("probabilities") and metadata naming the classes (graft.class_names, a
// JSON list), the preprocessing and the cut.
Graph served_model(const Graph& logits_model, const std::vector<std::string>& class_names,
                   const Preprocess& preprocess, const std::string& cut);

// The served model rebuilt from a `graft train` checkpoint, with the best
// epoch's weights (what `graft export` writes).
Graph model_from_checkpoint(const std::string& checkpoint_path);

// Replaces every parameter of `graph` (weights of convolutions and linear
// layers) with seeded Kaiming-uniform values and resets BatchNorms to the
// identity: the same architecture with no pretraining, for comparisons.
void randomize_weights(Graph& graph, uint64_t seed);

// Class names stored in a served model (empty if none).
std::vector<std::string> class_names_of(const Graph& model);

struct TransferOptions {
  std::string cut;            // value or node name; "" = the suggested cut point;
                              // "search" = the best of every block's output (see cut_table)
  int unfreeze = 0;           // also train the last K blocks before the cut
  HeadOptions head;           // classes: from the data when < 1
  bool standardize = false;   // z-score the features with the training set's statistics
                              // (frozen, part of the exported model)
  FitOptions fit;
  Preprocess preprocess;      // see preprocess_for()
  Augment augment;            // cached as `views` augmented views per image
  int views = 1;
  std::string cache_dir;      // "" keeps features in memory only
  int workers = 2;
  bool skip_bad = false;
};

struct TransferProgress {
  std::string stage;          // "features: train" (...validation, test), "train", "epoch"
  int64_t done = 0, total = 0;
  FitProgress fit;            // during "train"
  EpochRecord epoch;          // at "epoch": the epoch just finished
};

struct TransferResult {
  Graph model;                // trunk + head with the best epoch's weights, outputs logits
  std::string cut;            // the value the head reads
  std::string cache_point;    // where features were cached (the cut, or the first unfrozen block's input)
  FitResult fit;
  Evaluation test;            // of the best epoch on the test set
  std::vector<size_t> test_samples;  // the test set's samples behind test's rows (bad ones skipped)
  std::vector<std::string> class_names;
  double feature_seconds = 0, train_seconds = 0;
  int64_t features_computed = 0, features_reused = 0;
  std::vector<std::string> skipped;  // bad samples skipped (skip_bad)
  // With cut "search": each candidate cut and the accuracy a head trained on
  // its pooled features reached on the selection set (the validation set, or
  // a seeded quarter of the training set when there is none).
  std::vector<std::pair<std::string, double>> cut_table;
  double search_seconds = 0;
};

// Runs the job. `val` may be empty: then the test set picks the best epoch
// (the seed's behaviour) and the report says so.
TransferResult transfer(const Graph& pretrained, const std::string& model_key, const Dataset& train,
                        const Dataset& val, const Dataset& test, const TransferOptions& options,
                        const std::function<void(const TransferProgress&)>& progress = {});

}  // namespace graft
