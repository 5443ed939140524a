// Batches are numbered within an epoch; batch k always holds the same
// samples (positions k*batch.. of the epoch's permutation) and each sample's
// augmentation is seeded by (seed, epoch, sample index), so what a batch
// contains never depends on which worker built it or when. Workers claim
// batch numbers in order, at most `prefetch` ahead of the consumer, and
// next() hands them out in order.
#include "graft/loader.h"

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "data/random.h"
#include "graft/error.h"

namespace graft {

uint64_t sample_seed(uint64_t seed, int64_t epoch, size_t index) {
  return data::mix_seeds({seed, static_cast<uint64_t>(epoch), index});
}

namespace {

// A built batch, or the error that stopped it.
struct Result {
  Batch batch;
  std::vector<std::string> skipped;
  std::exception_ptr error;
};

}  // namespace

struct Loader::Impl {
  Dataset dataset;
  LoaderOptions o;
  bool multi_label = false;
  std::vector<std::string> skipped;

  // The current epoch.
  int64_t epoch = -1;
  std::vector<size_t> order;
  int64_t num_batches = 0;

  // Shared with the workers, guarded by mutex.
  std::mutex mutex;
  std::condition_variable work_cv;   // a worker may claim a batch, or must stop
  std::condition_variable ready_cv;  // a batch is ready
  int64_t next_claim = 0;
  int64_t next_deliver = 0;
  std::map<int64_t, Result> ready;
  bool stopping = false;
  std::vector<std::thread> threads;

  Result build(int64_t k) const;
  void worker();
  void stop();
};

Result Loader::Impl::build(int64_t k) const {
  Result r;
  try {
    const size_t begin = size_t(k * o.batch);
    const size_t end = std::min(order.size(), begin + size_t(o.batch));
    const Preprocess& p = o.preprocess;
    const int64_t per_image = p.size * p.size * 3;
    Tensor images(DType::kF32, p.nhwc ? Shape{int64_t(end - begin), p.size, p.size, 3}
                                      : Shape{int64_t(end - begin), 3, p.size, p.size});
    std::vector<size_t> kept;
    for (size_t i = begin; i < end; ++i) {
      const Sample& s = dataset.samples[order[i]];
      float* dst = images.data<float>() + int64_t(kept.size()) * per_image;
      try {
        load_image_into(s.path, p, o.augment, sample_seed(o.seed, epoch, order[i]), dst);
        kept.push_back(order[i]);
      } catch (Error& e) {
        // Image errors name the file; a list line is worth adding.
        if (s.source != s.path) e.add_context(s.source);
        if (!o.skip_bad || e.kind() == ErrorKind::kInternal) throw;
        r.skipped.push_back(e.what());
      }
    }
    const int64_t n = int64_t(kept.size());
    if (n < int64_t(end - begin)) {  // drop the rows of skipped samples
      Shape shape = images.shape();
      shape[0] = n;
      Tensor trimmed(DType::kF32, shape);
      std::copy(images.data<float>(), images.data<float>() + n * per_image, trimmed.data<float>());
      images = trimmed;
    }
    r.batch.images = images;
    r.batch.indices = kept;
    if (multi_label) r.batch.targets = Tensor(DType::kF32, {n, dataset.num_classes});
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<int64_t>& labels = dataset.samples[kept[i]].labels;
      r.batch.labels.push_back(labels.empty() ? -1 : labels[0]);
      if (multi_label)
        for (int64_t l : labels) r.batch.targets.data<float>()[i * dataset.num_classes + l] = 1;
    }
  } catch (...) {
    r.error = std::current_exception();
  }
  return r;
}

void Loader::Impl::worker() {
  while (true) {
    int64_t k;
    {
      std::unique_lock lock(mutex);
      work_cv.wait(lock, [&] {
        return stopping || next_claim >= num_batches || next_claim < next_deliver + o.prefetch;
      });
      if (stopping || next_claim >= num_batches) return;
      k = next_claim++;
    }
    Result r = build(k);
    {
      std::lock_guard lock(mutex);
      ready[k] = std::move(r);
    }
    ready_cv.notify_all();
  }
}

void Loader::Impl::stop() {
  {
    std::lock_guard lock(mutex);
    stopping = true;
  }
  work_cv.notify_all();
  for (std::thread& t : threads) t.join();
  threads.clear();
  ready.clear();
  stopping = false;
}

Loader::Loader(const Dataset& d, LoaderOptions o) : impl_(std::make_unique<Impl>()) {
  GRAFT_CHECK(o.batch > 0, kInvalidArgument, "loader: batch must be positive, got {}", o.batch);
  GRAFT_CHECK(o.workers >= 0 && o.workers <= 256, kInvalidArgument,
              "loader: workers must be in 0..256, got {}", o.workers);
  GRAFT_CHECK(o.prefetch > 0, kInvalidArgument, "loader: prefetch must be positive, got {}",
              o.prefetch);
  GRAFT_CHECK(!d.samples.empty(), kInvalidArgument, "loader: the data set has no samples");
  for (const Sample& s : d.samples)
    for (int64_t l : s.labels)
      GRAFT_CHECK(l >= 0 && l < d.num_classes, kInvalidArgument,
                  "{}: label {} is out of range for {} classes", s.source, l, d.num_classes);
  impl_->dataset = d;
  impl_->o = std::move(o);
  impl_->multi_label = d.multi_label();
}

Loader::~Loader() { impl_->stop(); }

void Loader::start_epoch(int64_t epoch) {
  Impl& m = *impl_;
  m.stop();
  m.epoch = epoch;
  m.order.resize(m.dataset.samples.size());
  std::iota(m.order.begin(), m.order.end(), size_t(0));
  if (m.o.shuffle) {
    data::Rng rng(data::mix_seeds({m.o.seed, static_cast<uint64_t>(epoch), 0x5348554646ULL}));
    data::shuffle(m.order, rng);
  }
  m.num_batches = batches_per_epoch();
  m.next_claim = m.next_deliver = 0;
  for (int i = 0; i < m.o.workers; ++i) m.threads.emplace_back([&m] { m.worker(); });
}

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  if (m.epoch < 0) start_epoch(0);
  while (true) {
    Result r;
    {
      std::unique_lock lock(m.mutex);
      if (m.next_deliver >= m.num_batches) return std::nullopt;
      const int64_t k = m.next_deliver;
      if (m.threads.empty()) {
        lock.unlock();
        r = m.build(k);
        lock.lock();
      } else {
        m.ready_cv.wait(lock, [&] { return m.ready.count(k) != 0; });
        r = std::move(m.ready[k]);
        m.ready.erase(k);
      }
      ++m.next_deliver;
    }
    m.work_cv.notify_all();
    if (r.error) std::rethrow_exception(r.error);
    m.skipped.insert(m.skipped.end(), r.skipped.begin(), r.skipped.end());
    if (!r.batch.indices.empty()) return std::move(r.batch);
  }
}

const std::vector<std::string>& Loader::skipped() const { return impl_->skipped; }

int64_t Loader::batches_per_epoch() const {
  const int64_t n = int64_t(impl_->dataset.samples.size()), b = impl_->o.batch;
  return impl_->o.drop_last ? n / b : (n + b - 1) / b;
}

const Dataset& Loader::dataset() const { return impl_->dataset; }

}  // namespace graft
