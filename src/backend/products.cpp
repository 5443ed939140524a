#include "backend/products.h"

#include <omp.h>

#include <algorithm>
#include <vector>

namespace graft::backend {

std::shared_ptr<Product> product(const std::string& key, const memory::desc& src,
                                 const memory::desc& weights, const memory::desc& dst,
                                 int64_t macs, bool accumulate) {
  return cached<Product>(key, macs_cost(macs), [&]() -> std::shared_ptr<Product> {
    dnnl::primitive_attr attr = attributes();
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), attr, engine());
    if (std::string(pd.impl_info_str()).find("ref") != std::string::npos) return nullptr;
    auto e = std::make_shared<Product>();
    e->cost = macs_cost(macs);
    e->prim = dnnl::matmul(pd);
    e->src = src;
    e->weights = weights;
    e->dst = dst;
    return e;
  });
}

void run(const Product& p, const void* src, const void* weights, void* dst) {
  execute(p.prim,
          {{DNNL_ARG_SRC, wrap(p.src, src)},
           {DNNL_ARG_WEIGHTS, wrap(p.weights, weights)},
           {DNNL_ARG_DST, wrap(p.dst, dst)}},
          p.cost);
}

void per_thread_sums(int threads, int64_t n, int64_t size, float* sum,
                     const std::function<void(int64_t, int64_t, float*)>& each) {
  auto zeroed_share = [&](int64_t first, int64_t last, float* share) {
    std::fill_n(share, size, 0.0f);
    each(first, last, share);
  };
  if (threads == 1) return zeroed_share(0, n, sum);
  std::vector<std::vector<float>> shares(threads);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    SerialScope serial;
    if (t > 0) shares[t].resize(size);
    zeroed_share(n * t / threads, n * (t + 1) / threads, t > 0 ? shares[t].data() : sum);
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t e = 0; e < size; ++e) sum[e] += shares[t][e];
}

int image_threads(int64_t macs, int64_t images) {
  return static_cast<int>(std::min<int64_t>(choose_threads(macs_cost(macs)), images));
}

}  // namespace graft::backend
