// Batches of model inputs from a Dataset: per-epoch shuffling, worker
// threads and a bounded prefetch queue. The batches of an epoch (their order,
// their samples and every augmentation) depend only on the options' seed and
// the epoch, never on the number of workers or on timing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graft/dataset.h"
#include "graft/image.h"
#include "graft/tensor.h"

namespace graft {

struct LoaderOptions {
  int64_t batch = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  int workers = 2;   // 0: load in the calling thread
  int prefetch = 4;  // batches loaded ahead of the consumer, at most
  Preprocess preprocess;
  Augment augment;
  bool skip_bad = false;   // skip unreadable images (listed by skipped()) instead of failing
  bool drop_last = false;  // drop a last batch smaller than `batch`
};

struct Batch {
  Tensor images;                // float32 [N,3,H,W], or [N,H,W,3] when preprocess.nhwc
  std::vector<int64_t> labels;  // each sample's first label
  Tensor targets;               // multi-hot float32 [N, classes] when the data set is multi-label
  std::vector<size_t> indices;  // the samples' indices in the data set
};

// The seed of one sample's augmentation in one epoch.
uint64_t sample_seed(uint64_t seed, int64_t epoch, size_t index);

class Loader {
 public:
  // Checks the options (kInvalidArgument) and that the data set is not empty.
  Loader(const Dataset& d, LoaderOptions o);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Reshuffles (seeded by seed and epoch) and starts loading; augmentation is
  // seeded per (seed, epoch, sample index). next() without it starts epoch 0.
  void start_epoch(int64_t epoch);
  // The next batch; nullopt at the end of the epoch. A bad image throws its
  // error (naming the list line and file) unless skip_bad, which drops the
  // sample from its batch (a batch left empty is skipped).
  std::optional<Batch> next();
  // "list.txt:3: images/a.jpg: reason" for every sample skipped so far, in
  // the order the batches were delivered.
  const std::vector<std::string>& skipped() const;

  int64_t batches_per_epoch() const;
  const Dataset& dataset() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace graft
