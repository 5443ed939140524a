// The graft command line, run as a user would: exit status and output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "graft/npy.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("graft_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "add.onnx", std::ios::binary) << test::add_model().SerializeAsString();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

}  // namespace

TEST_F(Cli, InspectListsInputsNodesAndTotals) {
  CommandResult r = graft_cli("inspect " + path("add.onnx") + " --input-shape x=4x3");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("x float32 [batchx3]  -> used as 4x3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("plus"), std::string::npos);
  EXPECT_NE(r.output.find("y [4x3]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 nodes, 3 parameters"), std::string::npos) << r.output;
}

TEST_F(Cli, RunWritesEachOutputAsNpy) {
  save_npy(path("x.npy"), Tensor::from_vector<float>({2, 3}, {0, 0, 0, 1, 1, 1}));
  CommandResult r = graft_cli("run " + path("add.onnx") + " --input " + path("x.npy") + " --out " + path("out"));
  ASSERT_EQ(r.status, 0) << r.output;
  Tensor y = load_npy(path("out/y.npy"));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3, 2, 3, 4}));
  // Named form.
  r = graft_cli("run " + path("add.onnx") + " --input x=" + path("x.npy") + " --out " + path("out2"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(path("out2/y.npy")));
}

TEST_F(Cli, ErrorsAreOneClearLineAndNonZero) {
  CommandResult r = graft_cli("inspect " + path("missing.onnx"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("graft: error: " + path("missing.onnx") + ": cannot open file"),
            std::string::npos)
      << r.output;
  save_npy(path("bad.npy"), Tensor(DType::kF32, {2, 5}));
  r = graft_cli("run " + path("add.onnx") + " --input " + path("bad.npy") + " --out " + path("o"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("input 'x' has shape 2x5"), std::string::npos) << r.output;
  r = graft_cli("inspect " + path("add.onnx") + " --input-shape x=4xq");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("'q' is not a dimension"), std::string::npos) << r.output;
}

TEST(CliBench, TimesEachModeAndProfiles) {
  const std::string model = std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025/model.onnx";
  for (const char* mode : {"none", "head", "full"}) {
    graft::test::CommandResult r =
        graft::test::graft_cli("bench " + model + " --batch 2 --iters 2 --warmup 1 --profile --train " + mode);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("ms per image"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Conv "), std::string::npos) << r.output;
    if (std::string(mode) == "full") {
      EXPECT_NE(r.output.find("Conv backward"), std::string::npos) << r.output;
    }
  }
  // Per node: the first convolution by name, forward and backward, once per step.
  graft::test::CommandResult r =
      graft::test::graft_cli("bench " + model + " --batch 2 --iters 2 --warmup 1 --by-node --train full");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* line : {"Conv /features/features.0/features.0.0/Conv ",
                           "Conv backward /features/features.0/features.0.0/Conv "}) {
    const size_t at = r.output.find(line);
    ASSERT_NE(at, std::string::npos) << line << "\n" << r.output;
    const std::string row = r.output.substr(at, r.output.find('\n', at) - at);
    EXPECT_EQ(row.substr(row.find_last_of(' ') + 1), "1") << row;  // calls per step
  }
}
