// The on-disk cache is one append-only file per settings:
//
//   header:  "GRAFTFC1" | u32 settings length | u32 0 | settings text, padded to 8
//   record:  u32 'GFRC' | u32 key length | u32 stamp length | u32 dim | u64 checksum |
//            key | stamp, padded to 8 | dim float32, padded to 8
//
// A record is written with one write() and its checksum covers everything
// after the checksum field, so a torn record (a crash, a full disk) fails
// its check and is dropped with everything after it; a key written twice
// (an image that changed) is served from its last record.
#include "graft/feature_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include "core/fault.h"
#include "data/random.h"
#include "graft/error.h"
#include "graft/file.h"
#include "graft/loader.h"

namespace graft {

namespace fs = std::filesystem;

std::string hash_file(const std::string& path) {
  GRAFT_CHECK(fs::is_regular_file(path), kNotFound, "{}: file not found", path);
  const std::string bytes = read_file(path);
  return fmt::format("{:016x}{:016x}", data::hash_bytes(bytes, 0), data::hash_bytes(bytes, 1));
}

namespace {

constexpr char kFileMagic[8] = {'G', 'R', 'A', 'F', 'T', 'F', 'C', '1'};
constexpr uint32_t kRecordMagic = 0x43524647;  // "GFRC"
constexpr size_t kRecordHeader = 24;

size_t pad8(size_t n) { return (n + 7) & ~size_t(7); }

// Where a cached row came from: its key (image and view) and the image's
// size and modification time when it was computed.
struct RowKey {
  std::string key;
  std::string stamp;
};

// A row found in the file or in memory.
struct Found {
  std::string stamp;
  const float* values = nullptr;
  uint32_t dim = 0;
};

[[noreturn]] void io_fail(const std::string& path, const char* what) {
  fail(ErrorKind::kIO, "{}: {} failed: {}", path, what, std::strerror(errno));
}

// "size:mtime_ns" of an image; "" when it cannot be read (it fails later, naming the file).
std::string stamp_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "";
  return fmt::format("{}:{}", st.st_size,
                     int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
}

std::string settings_text(const FeatureCacheOptions& o, const std::string& input,
                          const std::string& output) {
  const Preprocess& p = o.preprocess;
  std::string s = fmt::format(
      "graft feature cache 1\ntrunk {}\ninput {}\noutput {}\nsize {} crop {:.9g} keep_aspect {}\n"
      "mean {:.9g} {:.9g} {:.9g}\nscale {:.9g} {:.9g} {:.9g}\nnhwc {}\nbackground {} {} {}\n",
      o.trunk_key, input, output, p.size, p.crop_fraction, p.keep_aspect, p.mean[0], p.mean[1],
      p.mean[2], p.scale[0], p.scale[1], p.scale[2], p.nhwc, p.background[0], p.background[1],
      p.background[2]);
  const Augment& a = o.augment;
  if (a.enabled)
    s += fmt::format("augment min_crop_area {:.9g} hflip {} jitter {:.9g} seed {}\n",
                     a.min_crop_area, a.hflip, a.jitter, o.seed);
  return s;
}

uint64_t record_checksum(const uint8_t* after_checksum, size_t n) {
  return data::hash_bytes(std::string_view(reinterpret_cast<const char*>(after_checksum), n), 7);
}

std::string make_record(const RowKey& k, const float* values, uint32_t dim) {
  const size_t text = pad8(k.key.size() + k.stamp.size());
  std::string r(kRecordHeader + text + pad8(size_t(dim) * 4), '\0');
  uint32_t head[4] = {kRecordMagic, uint32_t(k.key.size()), uint32_t(k.stamp.size()), dim};
  std::memcpy(r.data(), head, 16);
  std::memcpy(r.data() + kRecordHeader, k.key.data(), k.key.size());
  std::memcpy(r.data() + kRecordHeader + k.key.size(), k.stamp.data(), k.stamp.size());
  std::memcpy(r.data() + kRecordHeader + text, values, size_t(dim) * 4);
  uint64_t sum = record_checksum(reinterpret_cast<const uint8_t*>(r.data()) + kRecordHeader,
                                 r.size() - kRecordHeader);
  sum ^= data::hash_bytes(std::string_view(r.data(), 16), 3);
  std::memcpy(r.data() + 16, &sum, 8);
  return r;
}

// An open, locked cache file with its records indexed.
class CacheFile {
 public:
  CacheFile(std::string path, const std::string& settings) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) io_fail(path_, "opening the feature cache");
    if (::flock(fd_, LOCK_EX) != 0) io_fail(path_, "locking");  // one writer at a time
    struct stat st;
    if (::fstat(fd_, &st) != 0) io_fail(path_, "stat");
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
      if (m == MAP_FAILED) io_fail(path_, "mapping");
      map_ = static_cast<const uint8_t*>(m);
    }
    size_t end = index(settings);
    if (end == 0) {  // new, or not ours: start over
      std::string header(16, '\0');
      std::memcpy(header.data(), kFileMagic, 8);
      uint32_t n = uint32_t(settings.size());
      std::memcpy(header.data() + 8, &n, 4);
      header += settings;
      header.resize(pad8(header.size()), '\0');
      truncate_to(0);
      append(header);
    } else if (end < size_) {
      truncate_to(end);  // a torn last record
    }
  }
  ~CacheFile() {
    if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
    if (fd_ >= 0) ::close(fd_);  // also releases the lock
  }

  const std::unordered_map<std::string, Found>& rows() const { return rows_; }
  void append(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, off_t(end_ + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) io_fail(path_, "writing the feature cache");
      done += size_t(n);
    }
    end_ += bytes.size();
  }
  void sync() {
    if (::fdatasync(fd_) != 0) io_fail(path_, "flushing the feature cache");
  }

 private:
  // Indexes the records; returns the end of the last good one (0 when the
  // header does not match these settings).
  size_t index(const std::string& settings) {
    if (size_ < 16 || std::memcmp(map_, kFileMagic, 8) != 0) return 0;
    uint32_t n;
    std::memcpy(&n, map_ + 8, 4);
    if (size_ < 16 + size_t(n) ||
        std::string_view(reinterpret_cast<const char*>(map_ + 16), n) != settings)
      return 0;
    size_t pos = pad8(16 + size_t(n));
    while (pos + kRecordHeader <= size_) {
      uint32_t head[4];
      uint64_t sum;
      std::memcpy(head, map_ + pos, 16);
      std::memcpy(&sum, map_ + pos + 16, 8);
      if (head[0] != kRecordMagic) break;
      const size_t text = pad8(size_t(head[1]) + head[2]);
      const size_t len = kRecordHeader + text + pad8(size_t(head[3]) * 4);
      if (len > size_ - pos) break;
      uint64_t expect =
          record_checksum(map_ + pos + kRecordHeader, len - kRecordHeader) ^
          data::hash_bytes(std::string_view(reinterpret_cast<const char*>(map_ + pos), 16), 3);
      if (sum != expect) break;
      const char* key = reinterpret_cast<const char*>(map_ + pos + kRecordHeader);
      Found& f = rows_[std::string(key, head[1])];
      f.stamp.assign(key + head[1], head[2]);
      f.values = reinterpret_cast<const float*>(map_ + pos + kRecordHeader + text);
      f.dim = head[3];
      pos += len;
    }
    end_ = pos;
    return pos;
  }
  void truncate_to(size_t n) {
    if (::ftruncate(fd_, off_t(n)) != 0) io_fail(path_, "truncating");
    end_ = n;
    if (n == 0) rows_.clear();
  }

  std::string path_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  size_t end_ = 0;
  std::unordered_map<std::string, Found> rows_;
};

// Runs fn(i) for i in [0, n) on up to `workers` threads.
template <typename Fn>
void parallel_for(size_t n, int workers, Fn fn) {
  std::atomic<size_t> next{0};
  auto run = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::min<int>(workers, int(n)); ++t) threads.emplace_back(run);
  run();
  for (std::thread& t : threads) t.join();
}

}  // namespace

struct FeatureCache::Impl {
  FeatureCacheOptions o;
  int views = 1;
  std::string file;
  // In memory: key -> (stamp, values).
  std::unordered_map<std::string, std::pair<std::string, std::vector<float>>> memory;
  int64_t computed = 0, reused = 0;
  std::vector<size_t> bad;
  std::vector<std::string> skipped;
};

FeatureCache::FeatureCache(FeatureCacheOptions o) : impl_(std::make_unique<Impl>()) {
  GRAFT_CHECK(o.views >= 1, kInvalidArgument, "feature cache: views must be at least 1, got {}",
              o.views);
  GRAFT_CHECK(o.batch >= 1, kInvalidArgument, "feature cache: batch must be positive, got {}",
              o.batch);
  GRAFT_CHECK(o.workers >= 0, kInvalidArgument, "feature cache: workers must be >= 0, got {}",
              o.workers);
  impl_->views = o.augment.enabled ? o.views : 1;
  impl_->o = std::move(o);
}

FeatureCache::~FeatureCache() = default;

Tensor FeatureCache::features(const Dataset& d, Session& trunk, const std::string& input,
                              const std::string& output, const Progress& progress) {
  Impl& m = *impl_;
  const FeatureCacheOptions& o = m.o;
  const int views = m.views;
  m.computed = m.reused = 0;
  m.bad.clear();
  m.skipped.clear();
  GRAFT_CHECK(!d.samples.empty(), kInvalidArgument, "feature cache: the data set has no samples");

  std::unique_ptr<CacheFile> file;
  if (!o.cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.cache_dir, ec);
    GRAFT_CHECK(!ec, kIO, "{}: cannot create the cache folder: {}", o.cache_dir, ec.message());
    const std::string settings = settings_text(o, input, output);
    m.file =
        (fs::path(o.cache_dir) / fmt::format("features-{:016x}.bin", data::hash_bytes(settings)))
            .string();
    file = std::make_unique<CacheFile>(m.file, settings);
  }

  // Each row's key and where it can be served from.
  const size_t rows = d.samples.size() * size_t(views);
  std::vector<RowKey> keys(rows);
  std::vector<const float*> source(rows, nullptr);
  uint32_t dim = 0;
  std::vector<size_t> missing;  // sample indices with a row to compute
  for (size_t i = 0; i < d.samples.size(); ++i) {
    const std::string path = fs::absolute(d.samples[i].path).lexically_normal().string();
    const std::string stamp = stamp_of(d.samples[i].path);
    bool any_missing = false;
    for (int v = 0; v < views; ++v) {
      RowKey& k = keys[i * views + v];
      k.key = fmt::format("{}#{}", path, v);
      k.stamp = stamp;
      const float* values = nullptr;
      uint32_t n = 0;
      if (file) {
        auto it = file->rows().find(k.key);
        if (it != file->rows().end() && it->second.stamp == stamp)
          values = it->second.values, n = it->second.dim;
      } else {
        auto it = m.memory.find(k.key);
        if (it != m.memory.end() && it->second.first == stamp)
          values = it->second.second.data(), n = uint32_t(it->second.second.size());
      }
      if (values && !stamp.empty() && (dim == 0 || n == dim)) {
        source[i * views + v] = values;
        dim = n;
        ++m.reused;
      } else {
        any_missing = true;
      }
    }
    if (any_missing) missing.push_back(i);
  }

  // Compute the missing samples' views in batches.
  std::vector<std::vector<float>> fresh(rows);
  const Preprocess& p = o.preprocess;
  const int64_t per_image = p.size * p.size * 3;
  const int64_t todo = int64_t(missing.size()) * views;
  int64_t done = 0;
  std::vector<std::pair<size_t, int>> jobs;  // (sample, view)
  for (size_t i : missing)
    for (int v = 0; v < views; ++v)
      if (!source[i * views + v]) jobs.push_back({i, v});
  for (size_t start = 0; start < jobs.size(); start += size_t(o.batch)) {
    const size_t n = std::min(jobs.size() - start, size_t(o.batch));
    Tensor images(DType::kF32, p.nhwc ? Shape{int64_t(n), p.size, p.size, 3}
                                      : Shape{int64_t(n), 3, p.size, p.size});
    std::vector<std::exception_ptr> errors(n);
    parallel_for(n, std::max(o.workers, 1), [&](size_t j) {
      // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
      const size_t i = jobs[start + j].first;
      const int v = jobs[start + j].second;
      const Sample& s = d.samples[i];
      try {
        with_context(s.source == s.path ? std::string() : s.source, [&] {
          load_image_into(
              s.path, p, o.augment,
              data::mix_seeds({o.seed, data::hash_bytes(keys[i * views].key), uint64_t(v)}),
              images.data<float>() + int64_t(j) * per_image);
        });
      } catch (...) {
        errors[j] = std::current_exception();
      }
    });
    for (size_t j = 0; j < n; ++j) {
      if (!errors[j]) continue;
      try {
        std::rethrow_exception(errors[j]);
      } catch (const Error& e) {
        if (!o.skip_bad || e.kind() == ErrorKind::kInternal) throw;
        const size_t i = jobs[start + j].first;
        if (m.bad.empty() || m.bad.back() != i) {
          m.bad.push_back(i);
          m.skipped.push_back(e.what());
        }
      }
    }
    TensorMap out = trunk.run({{input, images}});
    auto it = out.find(output);
    GRAFT_CHECK(it != out.end(), kNotFound, "feature cache: the trunk has no output '{}'", output);
    Tensor f = it->second.dtype() == DType::kF32 ? it->second : it->second.cast(DType::kF32);
    GRAFT_CHECK(f.rank() >= 1 && f.dim(0) == int64_t(n), kInvalidArgument,
                "feature cache: trunk output '{}' has shape {}, expected {} rows", output,
                shape_str(f.shape()), n);
    const uint32_t fdim = uint32_t(f.numel() / int64_t(n));
    GRAFT_CHECK(dim == 0 || fdim == dim, kInvalidArgument,
                "feature cache: trunk output '{}' has {} values per image, the cache has {}",
                output, fdim, dim);
    dim = fdim;
    std::string records;  // the batch's rows, appended with one write
    for (size_t j = 0; j < n; ++j) {
      if (errors[j]) continue;
      const auto [i, v] = jobs[start + j];
      const float* row = f.data<float>() + j * dim;
      const size_t r = i * views + v;
      fresh[r].assign(row, row + dim);
      source[r] = fresh[r].data();
      if (file)
        records += make_record(keys[r], row, dim);
      else
        m.memory[keys[r].key] = {keys[r].stamp, fresh[r]};
      ++m.computed;
    }
    if (file) file->append(records);
    fault_point("features");  // the crash tests' kill during extraction
    done += int64_t(n);
    if (progress) progress(done, todo);
  }
  if (file && m.computed > 0) file->sync();
  std::sort(m.bad.begin(), m.bad.end());

  Tensor table(DType::kF32, {int64_t(rows), int64_t(dim)});
  for (size_t r = 0; r < rows; ++r)
    if (source[r]) std::memcpy(table.data<float>() + r * dim, source[r], size_t(dim) * 4);
  return table;
}

int FeatureCache::views() const { return impl_->views; }
int64_t FeatureCache::computed() const { return impl_->computed; }
int64_t FeatureCache::reused() const { return impl_->reused; }
const std::vector<size_t>& FeatureCache::bad_samples() const { return impl_->bad; }
const std::vector<std::string>& FeatureCache::skipped() const { return impl_->skipped; }
const std::string& FeatureCache::file() const { return impl_->file; }

}  // namespace graft
