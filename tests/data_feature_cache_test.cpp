// The feature cache: features computed once and reused, in memory and on
// disk across instances; a changed image or setting recomputes exactly its
// rows; a torn or damaged record is never served; augmented views.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "graft/feature_cache.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) {
  return std::string(GRAFT_TEST_DATA) + "/images/" + name;
}

struct Folder {
  fs::path dir;
  Folder() {
    static int n = 0;
    dir = fs::temp_directory_path() /
          ("graft_fcache_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(dir / "img");
    const char* files[] = {"rgb.jpg", "grey.jpg", "rgba.png", "orient6.jpg", "cmyk.jpg"};
    std::string list;
    for (int i = 0; i < 5; ++i) {
      std::string name = "s" + std::to_string(i) + fs::path(files[i]).extension().string();
      fs::copy_file(fixture(files[i]), dir / "img" / name);
      list += name + " " + std::to_string(i % 2) + "\n";
    }
    std::ofstream(dir / "list.txt") << list;
  }
  ~Folder() { fs::remove_all(dir); }
  Dataset dataset() const {
    return read_list_file((dir / "img").string(), (dir / "list.txt").string());
  }
  std::string cache() const { return (dir / "cache").string(); }
};

// A stand-in trunk: per-channel mean and max of the image, [N, 6].
Session trunk() {
  Graph g;
  g.opset = 13;
  g.inputs.push_back({"x", DType::kF32, std::vector<Dim>{{-1, "n"}, {3, ""}, {16, ""}, {16, ""}}});
  g.outputs.push_back({"features", DType::kF32, std::nullopt});
  auto node = [](std::string op, std::vector<std::string> in, std::string out,
                 std::map<std::string, Attribute> attrs = {}) {
    Node n;
    n.name = op + "_" + out;
    n.op_type = op;
    n.inputs = std::move(in);
    n.outputs = {out};
    n.attrs = std::move(attrs);
    return n;
  };
  g.nodes = {node("GlobalAveragePool", {"x"}, "avg"), node("GlobalMaxPool", {"x"}, "max"),
             node("Concat", {"avg", "max"}, "cat", {{"axis", int64_t(1)}}),
             node("Flatten", {"cat"}, "features", {{"axis", int64_t(1)}})};
  return Session(g);
}

FeatureCacheOptions options(const std::string& dir) {
  FeatureCacheOptions o;
  o.cache_dir = dir;
  o.trunk_key = "model-hash:cut";
  o.preprocess.size = 16;
  o.batch = 2;
  return o;
}

std::vector<float> row(const Tensor& t, int64_t r) {
  const float* p = t.data<float>() + r * t.dim(1);
  return std::vector<float>(p, p + t.dim(1));
}

// What the trunk gives for one image.
std::vector<float> expected_row(const std::string& path, const Preprocess& p) {
  Session s = trunk();
  Tensor x = load_image(path, p).reshaped({1, 3, p.size, p.size});
  return s.run({{"x", x}}).at("features").to_vector<float>();
}

}  // namespace

TEST(FeatureCache, InMemoryComputesOnceAndServesAfterwards) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  FeatureCache cache(options(""));
  int64_t last_done = 0, last_total = 0;
  Tensor a = cache.features(d, s, "x", "features", [&](int64_t done, int64_t total) {
    last_done = done;
    last_total = total;
  });
  EXPECT_EQ(a.shape(), (Shape{5, 6}));
  EXPECT_EQ(cache.computed(), 5);
  EXPECT_EQ(cache.reused(), 0);
  EXPECT_EQ(last_done, 5);
  EXPECT_EQ(last_total, 5);
  EXPECT_EQ(cache.file(), "");
  for (int i = 0; i < 5; ++i) {
    std::vector<float> want = expected_row(d.samples[i].path, options("").preprocess);
    std::vector<float> got = row(a, i);
    for (int k = 0; k < 6; ++k) EXPECT_NEAR(got[k], want[k], 1e-6) << i;
  }
  Tensor b = cache.features(d, s, "x", "features");
  EXPECT_EQ(cache.computed(), 0);
  EXPECT_EQ(cache.reused(), 5);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(FeatureCache, OnDiskASecondRunSkipsExtraction) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  Tensor first;
  {
    FeatureCache cache(options(f.cache()));
    first = cache.features(d, s, "x", "features");
    EXPECT_EQ(cache.computed(), 5);
    EXPECT_TRUE(fs::exists(cache.file()));
  }
  FeatureCache again(options(f.cache()));
  Tensor second = again.features(d, s, "x", "features");
  EXPECT_EQ(again.computed(), 0);
  EXPECT_EQ(again.reused(), 5);
  EXPECT_EQ(first.to_vector<float>(), second.to_vector<float>());
  // A subset (e.g. the validation part) is served from the same file.
  Dataset part = d;
  part.samples = {d.samples[3], d.samples[1]};
  Tensor sub = again.features(part, s, "x", "features");
  EXPECT_EQ(again.computed(), 0);
  EXPECT_EQ(row(sub, 0), row(first, 3));
  EXPECT_EQ(row(sub, 1), row(first, 1));
}

TEST(FeatureCache, AChangedImageRecomputesExactlyItsRow) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  Tensor before = FeatureCache(options(f.cache())).features(d, s, "x", "features");
  // Replace image 2 with another picture (other size and mtime).
  fs::copy_file(fixture("rgb.png"), d.samples[2].path, fs::copy_options::overwrite_existing);
  FeatureCache cache(options(f.cache()));
  Tensor after = cache.features(d, s, "x", "features");
  EXPECT_EQ(cache.computed(), 1);
  EXPECT_EQ(cache.reused(), 4);
  for (int i : {0, 1, 3, 4}) EXPECT_EQ(row(after, i), row(before, i));
  std::vector<float> want = expected_row(d.samples[2].path, options("").preprocess);
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(row(after, 2)[k], want[k], 1e-6);
  EXPECT_NE(row(after, 2), row(before, 2));
  // Same size, new modification time: recomputed too.
  fs::last_write_time(d.samples[4].path,
                      fs::last_write_time(d.samples[4].path) + std::chrono::seconds(5));
  FeatureCache third(options(f.cache()));
  third.features(d, s, "x", "features");
  EXPECT_EQ(third.computed(), 1);
}

TEST(FeatureCache, AChangedSettingOrTrunkUsesOtherEntries) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  FeatureCacheOptions o = options(f.cache());
  FeatureCache base(o);
  Tensor a = base.features(d, s, "x", "features");
  FeatureCacheOptions other_trunk = o;
  other_trunk.trunk_key = "other-model:cut";
  FeatureCache t(other_trunk);
  t.features(d, s, "x", "features");
  EXPECT_EQ(t.computed(), 5);
  EXPECT_NE(t.file(), base.file());
  FeatureCacheOptions other_mean = o;
  other_mean.preprocess.mean[1] = 100;
  FeatureCache m(other_mean);
  Tensor b = m.features(d, s, "x", "features");
  EXPECT_EQ(m.computed(), 5);
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
  FeatureCacheOptions other_crop = o;
  other_crop.preprocess.crop_fraction = 1.0f;
  FeatureCache c(other_crop);
  c.features(d, s, "x", "features");
  EXPECT_EQ(c.computed(), 5);
  // The original settings still find their own rows.
  FeatureCache back(o);
  EXPECT_EQ(back.features(d, s, "x", "features").to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(back.computed(), 0);
}

TEST(FeatureCache, TornOrDamagedRecordsAreNeverServed) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  FeatureCache first(options(f.cache()));
  Tensor good = first.features(d, s, "x", "features");
  const std::string file = first.file();
  const auto size = fs::file_size(file);
  // A crash in the middle of the last record's write.
  fs::resize_file(file, size - 10);
  FeatureCache torn(options(f.cache()));
  EXPECT_EQ(torn.features(d, s, "x", "features").to_vector<float>(), good.to_vector<float>());
  EXPECT_EQ(torn.computed(), 1);
  EXPECT_EQ(fs::file_size(file), size);  // the torn tail was replaced
  // A damaged byte inside the last record's values: it fails its check.
  {
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(std::streamoff(size - 8));
    io.put('\x7f');
  }
  FeatureCache damaged(options(f.cache()));
  EXPECT_EQ(damaged.features(d, s, "x", "features").to_vector<float>(), good.to_vector<float>());
  EXPECT_EQ(damaged.computed(), 1);
  // A file that is not a cache at all is started over.
  std::ofstream(file, std::ios::trunc) << "garbage";
  FeatureCache garbage(options(f.cache()));
  EXPECT_EQ(garbage.features(d, s, "x", "features").to_vector<float>(), good.to_vector<float>());
  EXPECT_EQ(garbage.computed(), 5);
}

TEST(FeatureCache, AugmentedViews) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  FeatureCacheOptions o = options(f.cache());
  o.augment.enabled = true;
  o.views = 3;
  FeatureCache cache(o);
  EXPECT_EQ(cache.views(), 3);
  Tensor t = cache.features(d, s, "x", "features");
  EXPECT_EQ(t.shape(), (Shape{15, 6}));
  EXPECT_EQ(cache.computed(), 15);
  EXPECT_NE(row(t, 0), row(t, 1));
  EXPECT_NE(row(t, 1), row(t, 2));
  FeatureCache again(o);
  EXPECT_EQ(again.features(d, s, "x", "features").to_vector<float>(), t.to_vector<float>());
  EXPECT_EQ(again.computed(), 0);
  // More views: the first three are reused.
  o.views = 4;
  FeatureCache more(o);
  Tensor four = more.features(d, s, "x", "features");
  EXPECT_EQ(more.computed(), 5);
  EXPECT_EQ(row(four, 4 + 2), row(t, 3 + 2));
  // Without augmentation there is one view.
  o.augment.enabled = false;
  EXPECT_EQ(FeatureCache(o).views(), 1);
}

TEST(FeatureCache, BadImagesFailOrAreSkipped) {
  Folder f;
  fs::copy_file(fixture("truncated.jpg"), f.dir / "img" / "s1.jpg",
                fs::copy_options::overwrite_existing);
  Dataset d = f.dataset();
  Session s = trunk();
  expect_error([&] { FeatureCache(options("")).features(d, s, "x", "features"); },
               ErrorKind::kCorruption, (f.dir / "list.txt").string() + ":2: ");
  FeatureCacheOptions o = options(f.cache());
  o.skip_bad = true;
  FeatureCache cache(o);
  Tensor t = cache.features(d, s, "x", "features");
  EXPECT_EQ(t.shape(), (Shape{5, 6}));
  EXPECT_EQ(cache.bad_samples(), std::vector<size_t>{1});
  ASSERT_EQ(cache.skipped().size(), 1u);
  EXPECT_NE(cache.skipped()[0].find("s1.jpg: bad JPEG"), std::string::npos) << cache.skipped()[0];
  EXPECT_EQ(row(t, 1), std::vector<float>(6, 0.0f));
  EXPECT_EQ(cache.computed(), 4);
  // Bad samples are not cached: they are tried again (and fixed, served).
  fs::copy_file(fixture("rgb.jpg"), f.dir / "img" / "s1.jpg", fs::copy_options::overwrite_existing);
  FeatureCache fixed(o);
  fixed.features(d, s, "x", "features");
  EXPECT_EQ(fixed.computed(), 1);
  EXPECT_TRUE(fixed.bad_samples().empty());
}

TEST(FeatureCache, Errors) {
  Folder f;
  Dataset d = f.dataset();
  Session s = trunk();
  expect_error([&] { FeatureCache(options("")).features(d, s, "x", "nope"); }, ErrorKind::kNotFound,
               "the trunk has no output 'nope'");
  FeatureCacheOptions o = options("");
  o.views = 0;
  expect_error([&] { FeatureCache c(o); }, ErrorKind::kInvalidArgument, "views must be at least 1");
  expect_error([&] { FeatureCache(options("")).features(Dataset{}, s, "x", "features"); },
               ErrorKind::kInvalidArgument, "no samples");
}

TEST(FeatureCache, HashFile) {
  Folder f;
  std::string a = hash_file(fixture("rgb.jpg"));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, hash_file(fixture("rgb.jpg")));
  EXPECT_NE(a, hash_file(fixture("rgb.png")));
  expect_error([&] { hash_file((f.dir / "none").string()); }, ErrorKind::kNotFound,
               "file not found");
}
