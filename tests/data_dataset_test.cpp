// Data sets: the seed's list format with its edge cases, image folders,
// the stratified split, and every error naming the file and line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "graft/dataset.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("graft_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string write(const std::string& name, const std::string& text) const {
    fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

}  // namespace

TEST(ListFile, ParsesPathsLabelsCommentsBlankLinesAndCrlf) {
  TempDir t;
  std::string list = t.write("list.txt",
                             "\xEF\xBB\xBF# a comment\r\n"
                             "cats/a.jpg 0\r\n"
                             "\r\n"
                             "   \n"
                             "dogs/my dog.jpg 2\n"
                             "  both/x.png\t1,2  \n"
                             "last.jpg 1");  // no final newline
  Dataset d = read_list_file("imgs", list);
  ASSERT_EQ(d.samples.size(), 4u);
  EXPECT_EQ(d.samples[0].path, (fs::path("imgs") / "cats/a.jpg").string());
  EXPECT_EQ(d.samples[0].labels, std::vector<int64_t>{0});
  EXPECT_EQ(d.samples[0].source, list + ":2");
  EXPECT_EQ(d.samples[1].path, (fs::path("imgs") / "dogs/my dog.jpg").string());
  EXPECT_EQ(d.samples[1].labels, std::vector<int64_t>{2});
  EXPECT_EQ(d.samples[1].source, list + ":5");
  EXPECT_EQ(d.samples[2].path, (fs::path("imgs") / "both/x.png").string());
  EXPECT_EQ(d.samples[2].labels, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(d.samples[3].source, list + ":7");
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_TRUE(d.multi_label());
}

TEST(ListFile, GivenClassCountAllowsUnusedClasses) {
  TempDir t;
  Dataset d = read_list_file("imgs", t.write("l.txt", "a.jpg 0\nb.jpg 1\n"), 4);
  EXPECT_EQ(d.num_classes, 4);
  EXPECT_EQ(d.class_names.size(), 4u);
  EXPECT_FALSE(d.multi_label());
}

TEST(ListFile, Errors) {
  TempDir t;
  expect_error([&] { read_list_file("imgs", (t.path / "missing.txt").string()); },
               ErrorKind::kNotFound, "missing.txt: list file not found");
  std::string no_label = t.write("a.txt", "a.jpg 0\nlonely.jpg\n");
  expect_error([&] { read_list_file("imgs", no_label); }, ErrorKind::kCorruption,
               no_label + ":2: expected 'path label', got 'lonely.jpg'");
  std::string nan = t.write("b.txt", "# c\na.jpg cat\n");
  expect_error([&] { read_list_file("imgs", nan); }, ErrorKind::kCorruption,
               nan + ":2: label 'cat' is not a number");
  std::string spaced = t.write("b2.txt", "my file.jpg\n");
  expect_error([&] { read_list_file("imgs", spaced); }, ErrorKind::kCorruption,
               spaced + ":1: label 'file.jpg' is not a number");
  std::string empty_item = t.write("c.txt", "a.jpg 1,\n");
  expect_error([&] { read_list_file("imgs", empty_item); }, ErrorKind::kCorruption,
               empty_item + ":1: label '' is not a number");
  std::string frac = t.write("d.txt", "a.jpg 1.5\n");
  expect_error([&] { read_list_file("imgs", frac); }, ErrorKind::kCorruption,
               frac + ":1: label '1.5' is not a number");
  std::string huge = t.write("e.txt", "a.jpg 99999999999999999999\n");
  expect_error([&] { read_list_file("imgs", huge); }, ErrorKind::kCorruption, "is not a number");
  std::string negative = t.write("f.txt", "a.jpg 0\nb.jpg -1\n");
  expect_error([&] { read_list_file("imgs", negative); }, ErrorKind::kCorruption,
               negative + ":2: label -1 is negative");
  std::string range = t.write("g.txt", "a.jpg 0\n\nb.jpg 0,4\n");
  expect_error([&] { read_list_file("imgs", range, 4); }, ErrorKind::kCorruption,
               range + ":3: label 4 is out of range for 4 classes (0..3)");
  std::string empty = t.write("h.txt", "# nothing\n\n  \n");
  expect_error([&] { read_list_file("imgs", empty); }, ErrorKind::kInvalidArgument,
               empty + ": no samples");
  std::string zero = t.write("i.txt", "");
  expect_error([&] { read_list_file("imgs", zero); }, ErrorKind::kInvalidArgument, "no samples");
  expect_error([&] { read_list_file("imgs", nan, 0); }, ErrorKind::kInvalidArgument,
               "num_classes must be positive");
}

TEST(ImageFolder, ClassesFromSortedFolderNames) {
  TempDir t;
  t.write("root/dog/b.JPG", "x");
  t.write("root/dog/a.png", "x");
  t.write("root/cat/z.jpeg", "x");
  t.write("root/cat/notes.txt", "ignored");
  t.write("root/cat/.hidden.jpg", "ignored");
  t.write("root/README", "ignored: not a folder");
  fs::create_directories(t.path / "root/empty");
  Dataset d = read_image_folder((t.path / "root").string());
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog", "empty"}));
  EXPECT_EQ(d.num_classes, 3);
  ASSERT_EQ(d.samples.size(), 3u);
  EXPECT_EQ(fs::path(d.samples[0].path).filename(), "z.jpeg");
  EXPECT_EQ(d.samples[0].labels, std::vector<int64_t>{0});
  EXPECT_EQ(fs::path(d.samples[1].path).filename(), "a.png");
  EXPECT_EQ(fs::path(d.samples[2].path).filename(), "b.JPG");
  EXPECT_EQ(d.samples[2].labels, std::vector<int64_t>{1});
  EXPECT_EQ(d.samples[2].source, d.samples[2].path);
}

TEST(ImageFolder, ClassNamesFileGivesTheOrder) {
  TempDir t;
  t.write("root/dog/a.jpg", "x");
  t.write("root/cat/b.jpg", "x");
  std::string names = t.write("names.txt", "# classes\ndog\r\ncat\nbird\n");
  Dataset d = read_image_folder((t.path / "root").string(), names);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"dog", "cat", "bird"}));
  ASSERT_EQ(d.samples.size(), 2u);
  EXPECT_EQ(d.samples[0].labels, std::vector<int64_t>{0});
  EXPECT_EQ(fs::path(d.samples[0].path).parent_path().filename(), "dog");
  EXPECT_EQ(d.samples[1].labels, std::vector<int64_t>{1});
}

TEST(ImageFolder, Errors) {
  TempDir t;
  expect_error([&] { read_image_folder((t.path / "nope").string()); }, ErrorKind::kNotFound,
               "image folder not found");
  t.write("root/dog/a.txt", "x");
  expect_error([&] { read_image_folder((t.path / "root").string()); }, ErrorKind::kInvalidArgument,
               "no images");
  t.write("root/cat/a.jpg", "x");
  std::string names = t.write("names.txt", "cat\n");
  expect_error([&] { read_image_folder((t.path / "root").string(), names); },
               ErrorKind::kCorruption, "folder 'dog' is not a class named in " + names);
  std::string twice = t.write("twice.txt", "cat\ndog\ncat\n");
  expect_error([&] { read_image_folder((t.path / "root").string(), twice); },
               ErrorKind::kCorruption, twice + ":3: class 'cat' is listed twice");
}

namespace {

Dataset synthetic(const std::vector<int>& per_class) {
  Dataset d;
  d.num_classes = static_cast<int64_t>(per_class.size());
  for (size_t c = 0; c < per_class.size(); ++c) {
    d.class_names.push_back("c" + std::to_string(c));
    for (int i = 0; i < per_class[c]; ++i)
      d.samples.push_back({"c" + std::to_string(c) + "_" + std::to_string(i), {int64_t(c)}, ""});
  }
  return d;
}

std::map<int64_t, int> count_by_class(const Dataset& d) {
  std::map<int64_t, int> n;
  for (const Sample& s : d.samples) n[s.labels[0]]++;
  return n;
}

}  // namespace

TEST(Split, StratifiedSeededAndDisjoint) {
  Dataset d = synthetic({10, 20, 1, 3});
  auto [train, val] = split_stratified(d, 0.2, 7);
  auto nv = count_by_class(val), nt = count_by_class(train);
  EXPECT_EQ(nv[0], 2);
  EXPECT_EQ(nv[1], 4);
  EXPECT_EQ(nv[2], 0);  // a class's last sample stays in training
  EXPECT_EQ(nv[3], 1);  // round(0.6)
  EXPECT_EQ(nt[2], 1);
  EXPECT_EQ(train.samples.size() + val.samples.size(), d.samples.size());
  std::set<std::string> seen;
  for (const Dataset* part : {&train, &val})
    for (const Sample& s : part->samples) EXPECT_TRUE(seen.insert(s.path).second) << s.path;
  EXPECT_EQ(val.num_classes, 4);
  EXPECT_EQ(train.class_names, d.class_names);

  auto [train2, val2] = split_stratified(d, 0.2, 7);
  ASSERT_EQ(val2.samples.size(), val.samples.size());
  for (size_t i = 0; i < val.samples.size(); ++i)
    EXPECT_EQ(val.samples[i].path, val2.samples[i].path);
  auto [train3, val3] = split_stratified(d, 0.2, 8);
  bool differs = false;
  for (size_t i = 0; i < val.samples.size(); ++i)
    differs |= val.samples[i].path != val3.samples[i].path;
  EXPECT_TRUE(differs) << "another seed should pick other samples";
  // Original order is kept inside each part.
  for (size_t i = 1; i < val.samples.size(); ++i)
    EXPECT_LE(val.samples[i - 1].labels[0], val.samples[i].labels[0]);
}

TEST(Split, ZeroFractionAndErrors) {
  Dataset d = synthetic({3, 3});
  auto [train, val] = split_stratified(d, 0.0, 1);
  EXPECT_EQ(train.samples.size(), 6u);
  EXPECT_TRUE(val.samples.empty());
  expect_error([&] { split_stratified(d, 1.0, 1); }, ErrorKind::kInvalidArgument,
               "validation fraction must be in [0, 1)");
  expect_error([&] { split_stratified(d, -0.1, 1); }, ErrorKind::kInvalidArgument,
               "validation fraction");
}
