// oneDNN matrix products on graft's own plain layouts, built once per case:
// the convolutions computed as products (pointwise.cpp, unfolded_conv.cpp).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "backend/dnnl_util.h"

namespace graft::backend {

struct Product {
  int64_t cost = 0;
  dnnl::matmul prim;
  memory::desc src, weights, dst;
};

// dst (+)= src . weights, cached under `key`; nullptr when oneDNN has only
// its reference implementation for these layouts (the caller then declines
// the case).
std::shared_ptr<Product> product(const std::string& key, const memory::desc& src,
                                 const memory::desc& weights, const memory::desc& dst,
                                 int64_t macs, bool accumulate);
void run(const Product& p, const void* src, const void* weights, void* dst);

// sum (`size` floats) = what each(first, last, share) adds up over the items
// [first, last) into a zeroed share, the n items split among `threads`
// threads, each with a share of its own and running its products alone
// (SerialScope); the shares are then added. For sums over images of
// products too narrow for the threads to share one well.
void per_thread_sums(int threads, int64_t n, int64_t size, float* sum,
                     const std::function<void(int64_t, int64_t, float*)>& each);
// The threads for `macs` multiply-adds shared out by image: as many as
// choose_threads gives them, at most one per image.
int image_threads(int64_t macs, int64_t images);

}  // namespace graft::backend
