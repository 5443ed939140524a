// Features of a frozen trunk, computed once per image and reused every
// epoch and every run.
//
// The trunk is a Session on the extracted trunk graph. features() returns a
// float32 [N * views, D] table: row i * views + v holds view v of sample i
// (views is 1 when augmentation is off), D the trunk output's size per
// image. Missing rows are computed in batches, images decoded by worker
// threads; the rest are reused.
//
// In memory (no cache_dir) the rows live as long as the FeatureCache. On
// disk they are kept in one file per (trunk key, input, output,
// preprocessing and augmentation settings) under cache_dir, read through a
// memory map. Each row is keyed by the image path and view and stamped with
// the image file's size and modification time: a changed image is
// recomputed, a changed setting or trunk selects another file; a stale row
// is never served. Rows are appended each as one checksummed record, so a
// crash can at worst leave a torn last record, which is detected and dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graft/dataset.h"
#include "graft/image.h"
#include "graft/session.h"
#include "graft/tensor.h"

namespace graft {

// A 128-bit content hash of a file as 32 hex digits (e.g. for a trunk key:
// hash_file(model) + ":" + cut). kNotFound if it cannot be read.
std::string hash_file(const std::string& path);

struct FeatureCacheOptions {
  std::string cache_dir;  // empty: in memory only
  std::string trunk_key;  // identifies the trunk: model content hash and cut
  Preprocess preprocess;
  Augment augment;
  int views = 1;          // augmented views per image; 1 when augmentation is off
  uint64_t seed = 0;      // seeds the augmented views
  // Images per trunk run. The trunk costs as much per image at 8 as at 32,
  // and its buffers are a quarter: the demo's cold fine-tune (171 images)
  // took 1.16-1.27 s and 118 MB at 8, 1.37-1.64 s and 305 MB at 32.
  int64_t batch = 8;
  int workers = 2;        // decoding threads
  bool skip_bad = false;  // a bad image: zero rows, listed in skipped(), instead of an error
};

class FeatureCache {
 public:
  explicit FeatureCache(FeatureCacheOptions o);
  ~FeatureCache();

  // (rows done, rows total), called after each computed batch.
  using Progress = std::function<void(int64_t, int64_t)>;

  // The [N * views, D] feature table of `d`, running `trunk` (input value
  // `input`, output value `output`) only for rows not cached.
  Tensor features(const Dataset& d, Session& trunk, const std::string& input,
                  const std::string& output, const Progress& progress = {});

  int views() const;
  // Of the last features() call: rows computed and rows served from the cache.
  int64_t computed() const;
  int64_t reused() const;
  // Of the last features() call, with skip_bad: the bad samples' indices and
  // "source: file: reason" lines.
  const std::vector<size_t>& bad_samples() const;
  const std::vector<std::string>& skipped() const;
  // The cache file in use ("" in memory).
  const std::string& file() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace graft
