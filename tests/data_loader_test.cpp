// The loader: every sample once per epoch, seeded shuffling, the same
// batches (order, samples, augmentation) whatever the number of workers,
// multi-hot targets, and bad samples failing or skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "graft/loader.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) {
  return std::string(GRAFT_TEST_DATA) + "/images/" + name;
}

// A folder of images copied from the fixtures, and a list file naming them.
struct Folder {
  fs::path dir;
  explicit Folder(const std::string& list_text, const std::vector<std::string>& broken = {}) {
    static int n = 0;
    dir = fs::temp_directory_path() /
          ("graft_loader_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(dir / "img");
    const char* good[] = {"rgb.jpg", "rgb.png", "grey.jpg", "orient6.jpg", "cmyk.jpg", "rgba.png"};
    for (int i = 0; i < 12; ++i)
      fs::copy_file(
          fixture(good[i % 6]),
          dir / "img" / ("p" + std::to_string(i) + fs::path(good[i % 6]).extension().string()));
    for (const std::string& b : broken) fs::copy_file(fixture(b), dir / "img" / b);
    std::ofstream(dir / "list.txt") << list_text;
  }
  ~Folder() { fs::remove_all(dir); }
  Dataset dataset(int64_t classes = -1) const {
    return read_list_file((dir / "img").string(), (dir / "list.txt").string(), classes);
  }
  std::string list() const { return (dir / "list.txt").string(); }
};

std::string twelve() {
  std::string text;
  const char* ext[] = {".jpg", ".png", ".jpg", ".jpg", ".jpg", ".png"};
  for (int i = 0; i < 12; ++i)
    text += "p" + std::to_string(i) + ext[i % 6] + " " + std::to_string(i % 3) + "\n";
  return text;
}

LoaderOptions small_options() {
  LoaderOptions o;
  o.batch = 5;
  o.preprocess.size = 16;
  o.seed = 11;
  return o;
}

// Everything a consumer sees in one epoch.
std::vector<std::pair<std::vector<size_t>, std::vector<float>>> epoch_of(Loader& l, int64_t e) {
  l.start_epoch(e);
  std::vector<std::pair<std::vector<size_t>, std::vector<float>>> out;
  while (auto b = l.next()) out.emplace_back(b->indices, b->images.to_vector<float>());
  return out;
}

}  // namespace

TEST(Loader, EverySampleOncePerEpochInBatches) {
  Folder f(twelve());
  Dataset d = f.dataset();
  Loader l(d, small_options());
  EXPECT_EQ(l.batches_per_epoch(), 3);
  for (int64_t e = 0; e < 2; ++e) {
    l.start_epoch(e);
    std::multiset<size_t> seen;
    std::vector<int64_t> sizes;
    while (auto b = l.next()) {
      sizes.push_back(int64_t(b->indices.size()));
      EXPECT_EQ(b->images.shape(), (Shape{int64_t(b->indices.size()), 3, 16, 16}));
      EXPECT_FALSE(b->targets.defined());
      for (size_t i = 0; i < b->indices.size(); ++i) {
        seen.insert(b->indices[i]);
        EXPECT_EQ(b->labels[i], d.samples[b->indices[i]].labels[0]);
      }
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 2}));
    EXPECT_EQ(seen.size(), 12u);
    EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()).size(), 12u);
    EXPECT_FALSE(l.next().has_value());  // stays at the end
  }
  LoaderOptions o = small_options();
  o.drop_last = true;
  Loader dl(d, o);
  EXPECT_EQ(dl.batches_per_epoch(), 2);
  EXPECT_EQ(epoch_of(dl, 0).size(), 2u);
}

TEST(Loader, ShufflingIsSeededPerEpoch) {
  Folder f(twelve());
  Dataset d = f.dataset();
  auto order = [&](LoaderOptions o, int64_t e) {
    Loader l(d, o);
    std::vector<size_t> all;
    for (auto& [indices, _] : epoch_of(l, e)) all.insert(all.end(), indices.begin(), indices.end());
    return all;
  };
  LoaderOptions o = small_options();
  EXPECT_EQ(order(o, 0), order(o, 0));
  EXPECT_NE(order(o, 0), order(o, 1));
  LoaderOptions other = o;
  other.seed = 12;
  EXPECT_NE(order(o, 0), order(other, 0));
  o.shuffle = false;
  std::vector<size_t> identity(12);
  for (size_t i = 0; i < 12; ++i) identity[i] = i;
  EXPECT_EQ(order(o, 3), identity);
}

TEST(Loader, SameBatchesWhateverTheNumberOfWorkers) {
  Folder f(twelve());
  Dataset d = f.dataset();
  LoaderOptions o = small_options();
  o.augment.enabled = true;
  o.workers = 0;
  Loader reference(d, o);
  auto e0 = epoch_of(reference, 0), e1 = epoch_of(reference, 1);
  EXPECT_NE(e0, e1);
  for (int workers : {1, 2, 3, 8}) {
    for (int prefetch : {1, 2, 6}) {
      o.workers = workers;
      o.prefetch = prefetch;
      Loader l(d, o);
      EXPECT_EQ(epoch_of(l, 0), e0) << workers << " workers, prefetch " << prefetch;
      EXPECT_EQ(epoch_of(l, 1), e1) << workers << " workers, prefetch " << prefetch;
    }
  }
  // Each image is load_image with the sample's seed.
  auto& [indices, values] = e1[0];
  Tensor one = load_image(d.samples[indices[1]].path, o.preprocess, o.augment,
                          sample_seed(o.seed, 1, indices[1]));
  std::vector<float> expected = one.to_vector<float>();
  EXPECT_EQ(std::vector<float>(values.begin() + 768, values.begin() + 1536), expected);
}

TEST(Loader, RestartingAnEpochAndStoppingEarlyAreSafe) {
  Folder f(twelve());
  Dataset d = f.dataset();
  LoaderOptions o = small_options();
  o.workers = 3;
  o.prefetch = 2;
  Loader l(d, o);
  auto full = epoch_of(l, 4);
  l.start_epoch(4);
  l.next();
  EXPECT_EQ(epoch_of(l, 4), full);  // restarted from the beginning
  l.start_epoch(5);
  l.next();
  // Destroyed here with workers mid-epoch: must not hang.
}

TEST(Loader, MultiLabelTargetsAndNhwc) {
  Folder f("p0.jpg 0,2\np1.png 1\n");
  Dataset d = f.dataset(4);
  LoaderOptions o = small_options();
  o.shuffle = false;
  o.preprocess.nhwc = true;
  Loader l(d, o);
  auto b = l.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->images.shape(), (Shape{2, 16, 16, 3}));
  ASSERT_TRUE(b->targets.defined());
  EXPECT_EQ(b->targets.shape(), (Shape{2, 4}));
  EXPECT_EQ(b->targets.to_vector<float>(), (std::vector<float>{1, 0, 1, 0, 0, 1, 0, 0}));
  EXPECT_EQ(b->labels, (std::vector<int64_t>{0, 1}));
}

TEST(Loader, BadSampleFailsNamingListLineAndFile) {
  Folder f("p0.jpg 0\np1.png 1\nnot_image.jpg 0\n", {"not_image.jpg"});
  LoaderOptions o = small_options();
  o.shuffle = false;
  Loader l(f.dataset(), o);
  expect_error(
      [&] { l.next(); }, ErrorKind::kCorruption,
      f.list() + ":3: " + (f.dir / "img" / "not_image.jpg").string() + ": not a JPEG or PNG image");
}

TEST(Loader, SkipBadSkipsCountsAndLists) {
  std::string list =
      "p0.jpg 0\nmissing.jpg 1\ntruncated.jpg 0\np1.png 1\nbomb.png 2\n"
      "p2.jpg 0\nnot_image.jpg 1\ncorrupt.png 0\n";
  Folder f(list, {"truncated.jpg", "bomb.png", "not_image.jpg", "corrupt.png"});
  LoaderOptions o = small_options();
  o.batch = 3;
  o.shuffle = false;
  o.skip_bad = true;
  for (int workers : {0, 2}) {
    o.workers = workers;
    Loader l(f.dataset(), o);
    std::vector<size_t> delivered;
    int batches = 0;
    while (auto b = l.next()) {
      ++batches;
      EXPECT_EQ(b->images.dim(0), int64_t(b->indices.size()));
      EXPECT_EQ(b->labels.size(), b->indices.size());
      delivered.insert(delivered.end(), b->indices.begin(), b->indices.end());
    }
    EXPECT_EQ(delivered, (std::vector<size_t>{0, 3, 5}));
    EXPECT_EQ(batches, 2);  // the third batch (not_image, corrupt) was all bad
    const std::vector<std::string>& s = l.skipped();
    ASSERT_EQ(s.size(), 5u);
    EXPECT_NE(s[0].find(f.list() + ":2: "), std::string::npos) << s[0];
    EXPECT_NE(s[0].find("missing.jpg: cannot open image"), std::string::npos) << s[0];
    EXPECT_NE(s[1].find(":3: "), std::string::npos) << s[1];
    EXPECT_NE(s[1].find("truncated.jpg: bad JPEG"), std::string::npos) << s[1];
    EXPECT_NE(s[2].find("bomb.png: image declares 100000x100000"), std::string::npos) << s[2];
    EXPECT_NE(s[3].find("not_image.jpg: not a JPEG or PNG image"), std::string::npos) << s[3];
    EXPECT_NE(s[4].find(":8: "), std::string::npos) << s[4];
  }
}

TEST(Loader, OptionErrors) {
  Folder f("p0.jpg 0\n");
  Dataset d = f.dataset();
  LoaderOptions o;
  o.batch = 0;
  expect_error([&] { Loader(d, o); }, ErrorKind::kInvalidArgument, "batch must be positive");
  o = LoaderOptions{};
  o.workers = -1;
  expect_error([&] { Loader(d, o); }, ErrorKind::kInvalidArgument, "workers must be in 0..256");
  o = LoaderOptions{};
  o.prefetch = 0;
  expect_error([&] { Loader(d, o); }, ErrorKind::kInvalidArgument, "prefetch must be positive");
  expect_error([&] { Loader(Dataset{}, LoaderOptions{}); }, ErrorKind::kInvalidArgument,
               "the data set has no samples");
  Dataset wrong = d;
  wrong.num_classes = 0;
  expect_error([&] { Loader(wrong, LoaderOptions{}); }, ErrorKind::kInvalidArgument,
               ":1: label 0 is out of range for 0 classes");
}
