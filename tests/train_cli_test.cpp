// graft train, predict, eval and export as a user runs them: the seed's form
// on a small generated image set, outputs, resume, and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "graft/checkpoint.h"
#include "graft/file.h"
#include "graft/npy.h"
#include "graft/onnx.h"
#include "graft/report.h"
#include "graft/session.h"
#include "graft/transfer.h"
#include "test_util.h"
#include "train_fixture.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

// Two classes of 40×40 noisy images: dark red and bright cyan (train_fixture.h).
class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("graft_train_cli_" + std::to_string(::getpid()));
    write_two_colour_images(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static std::string seed_args(const std::string& out) { return seed_train_args(dir_, path(out)); }
  static fs::path dir_;
};

fs::path TrainCli::dir_;

std::vector<std::string> lines(const std::string& file) { return file_lines(file); }

}  // namespace

TEST_F(TrainCli, SeedFormWritesEveryOutputAndLearns) {
  // An early cut: this test model's weights are random, and its deep
  // features say little about colour; the cut's output gets pooled.
  CommandResult r = graft_cli(seed_args("run") + " --epochs 20 --lr 0.01 --cut /features/features.2/conv/conv.2/Conv");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("epoch  20/20"), std::string::npos) << r.output;  // one plain line per epoch
  EXPECT_NE(r.output.find("test accuracy 1.0000 (8 images)"), std::string::npos) << r.output;
  for (const char* f : {"model.onnx", "labels.txt", "metrics.jsonl", "checkpoint.ckpt", "report.html"})
    EXPECT_TRUE(fs::exists(path("run/") + f)) << f;
  EXPECT_EQ(lines(path("run/labels.txt")), (std::vector<std::string>{"red", "blue"}));
  EXPECT_EQ(lines(path("run/metrics.jsonl")).size(), 20u);
  // The served model: probabilities, class names, preprocessing; runs in graft.
  Graph served = load_onnx(path("run/model.onnx"));
  EXPECT_EQ(served.outputs.at(0).name, "probabilities");
  EXPECT_EQ(class_names_of(served), (std::vector<std::string>{"red", "blue"}));
  EXPECT_EQ(preprocess_for(served).size, 64);
  std::string report = read_file(path("run/report.html"));
  EXPECT_NE(report.find("blue"), std::string::npos);

  CommandResult p = graft_cli("predict " + path("run/model.onnx") + " \"" + path("images/img 17.png") + "\" --top 2");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_NE(p.output.find("img 17.png\n  blue"), std::string::npos) << p.output;  // image 17 is blue
  CommandResult e = graft_cli("eval " + path("run/model.onnx") + " --list " + path("test.txt") + " --dir " + path("images"));
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NE(e.output.find("8 images: accuracy 1.0000"), std::string::npos) << e.output;

  // export rebuilds the same served model from the checkpoint alone.
  CommandResult x = graft_cli("export " + path("run/checkpoint.ckpt") + " --out " + path("exported.onnx"));
  ASSERT_EQ(x.status, 0) << x.output;
  Tensor input = load_image(path("images/img 3.png"), preprocess_for(served)).reshaped({1, 3, 64, 64});
  Tensor a = Session(served).run({{served.inputs[0].name, input}}).at("probabilities");
  Graph exported = load_onnx(path("exported.onnx"));
  Tensor b = Session(exported).run({{exported.inputs[0].name, input}}).at("probabilities");
  for (int k = 0; k < 2; ++k) EXPECT_NEAR(a.data<float>()[k], b.data<float>()[k], 1e-6);
}

TEST_F(TrainCli, ResumeGivesTheUninterruptedRun) {
  // A constant schedule: a run stopped after 2 of 5 epochs then has the same
  // settings as the whole run (a cosine schedule depends on --epochs).
  const std::string recipe = " --schedule constant --dropout 0.3 --hidden 8";
  ASSERT_EQ(graft_cli(seed_args("whole") + recipe + " --epochs 5").status, 0);
  ASSERT_EQ(graft_cli(seed_args("parts") + recipe + " --epochs 2").status, 0);
  CommandResult r = graft_cli(seed_args("parts") + recipe + " --epochs 5 --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(lines(path("parts/metrics.jsonl")).size(), 5u);
  // Same losses and accuracies epoch by epoch (the timing fields differ).
  auto strip_time = [](std::vector<std::string> v) {
    for (std::string& l : v) l = l.substr(0, l.find("\"seconds\""));
    return v;
  };
  EXPECT_EQ(strip_time(lines(path("parts/metrics.jsonl"))), strip_time(lines(path("whole/metrics.jsonl"))));
  EXPECT_EQ(read_file(path("parts/labels.txt")), read_file(path("whole/labels.txt")));
}

TEST_F(TrainCli, ImageFolderLayout) {
  for (const char* cls : {"red", "blue"}) fs::create_directories(dir_ / "folder" / cls);
  int i = 0;
  for (const std::string& line : lines(path("train.txt"))) {
    std::string name = line.substr(0, line.rfind(' '));
    fs::copy(dir_ / "images" / name, dir_ / "folder" / (line.back() == '0' ? "red" : "blue") / name,
             fs::copy_options::overwrite_existing);
    ++i;
  }
  CommandResult r = graft_cli("train " + std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025/model.onnx --train-folder " +
                          path("folder") + " --val-split 0.25 --epochs 2 --no-cache --out " + path("folder_run"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("12 training, 4 validation, 0 test images, 2 classes"), std::string::npos) << r.output;
  EXPECT_EQ(lines(path("folder_run/labels.txt")), (std::vector<std::string>{"blue", "red"}));  // sorted names
}

TEST_F(TrainCli, BadInputIsOneLineAndKeepsEarlierOutputs) {
  ASSERT_EQ(graft_cli(seed_args("keep") + " --epochs 1").status, 0);
  std::string model_before = read_file(path("keep/model.onnx"));
  std::ofstream(path("bad.txt")) << "img 0.png 0\nmissing.png 1\n";
  CommandResult r = graft_cli("train " + std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025/model.onnx " +
                          path("images") + " " + path("bad.txt") + " " + path("images") + " " + path("test.txt") +
                          " --no-cache --epochs 1 --out " + path("keep"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("graft: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bad.txt:2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing.png"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(path("keep/model.onnx")), model_before);

  std::ofstream(path("bad_label.txt")) << "img 0.png 0\nimg 1.png x\n";
  r = graft_cli("train " + std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025/model.onnx " + path("images") +
                " " + path("bad_label.txt") + " " + path("images") + " " + path("test.txt") + " --out " + path("keep"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("bad_label.txt:2"), std::string::npos) << r.output;

  r = graft_cli(seed_args("keep") + " --cut /features/features.16/Ad");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("nearest: /features/features.16/Add"), std::string::npos) << r.output;

  // With --skip-bad the missing image is skipped and listed.
  r = graft_cli("train " + std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025/model.onnx " + path("images") +
                " " + path("bad.txt") + " " + path("images") + " " + path("test.txt") +
                " --no-cache --epochs 1 --skip-bad --out " + path("skip"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("1 bad samples skipped"), std::string::npos) << r.output;
}

TEST_F(TrainCli, FeatureCacheIsReusedPerCutAndNeverAcrossCuts) {
  const std::string cache = " --cache-dir " + path("cache");
  const std::string base = seed_args("cached");
  std::string args = base.substr(0, base.find(" --no-cache")) + base.substr(base.find(" --no-cache") + 11);
  CommandResult a = graft_cli(args + cache + " --epochs 1 --cut /features/features.2/conv/conv.2/Conv");
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_NE(a.output.find("24 computed, 0 from the cache"), std::string::npos) << a.output;
  CommandResult b = graft_cli(args + cache + " --epochs 1 --cut /features/features.2/conv/conv.2/Conv");
  EXPECT_NE(b.output.find("0 computed, 24 from the cache"), std::string::npos) << b.output;
  // Another inner cut is pooled at the same graph value: it must not be served the first cut's rows.
  CommandResult c = graft_cli(args + cache + " --epochs 1 --cut /features/features.3/Add");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("24 computed, 0 from the cache"), std::string::npos) << c.output;
}

TEST_F(TrainCli, TheSeedsProgramInGraftsApi) {
  std::string cmd = "cd " + path("") + " && " + std::string(GRAFT_EXAMPLE) + " " + std::string(GRAFT_TEST_DATA) +
                    "/models/mobilenet_v2_025/model.onnx " + path("images") + " " + path("train.txt") + " " +
                    path("images") + " " + path("test.txt");
  auto [status, out] = run_command(cmd);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("epoch 50: train loss"), std::string::npos) << out;
  EXPECT_NE(out.find("test accuracy"), std::string::npos) << out;
  Graph saved = load_onnx(path("mobilenet_v2_transfer.onnx"));
  EXPECT_EQ(saved.outputs.at(0).name, "probabilities");
  bool conv_head = false;
  for (const Node& n : saved.nodes) conv_head = conv_head || n.name == "head/classifier";
  EXPECT_TRUE(conv_head);
}

TEST_F(TrainCli, UnfreezeAugmentAndCutSearch) {
  // --unfreeze: features are cached where the unfrozen blocks begin, and
  // those blocks train (BatchNorm-free export here: the fixture's BN is folded).
  CommandResult u = graft_cli(seed_args("unfreeze") + " --epochs 2 --unfreeze 2");
  ASSERT_EQ(u.status, 0) << u.output;
  EXPECT_EQ(u.output.find("(features cached at /GlobalAveragePool_output_0)"), std::string::npos) << u.output;
  EXPECT_TRUE(fs::exists(path("unfreeze/model.onnx")));
  // --augment: each training image is cached as N augmented views.
  CommandResult a = graft_cli(seed_args("augment") + " --epochs 2 --augment --views 2");
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_NE(a.output.find("40 computed"), std::string::npos) << a.output;  // 16 × 2 views + 8 test images
  // --cut search: a table of candidate cuts, one chosen.
  CommandResult s = graft_cli(seed_args("search") + " --epochs 2 --cut search");
  ASSERT_EQ(s.status, 0) << s.output;
  EXPECT_NE(s.output.find("cut search"), std::string::npos) << s.output;
  EXPECT_NE(s.output.find("<- chosen"), std::string::npos) << s.output;
}
