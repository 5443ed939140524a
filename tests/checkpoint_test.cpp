#include <gtest/gtest.h>

#include <filesystem>

#include "graft/checkpoint.h"
#include "graft/file.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

Checkpoint sample() {
  Checkpoint c;
  c.graph_fingerprint = "abc";
  c.step = 17;
  c.epoch = 2;
  c.info["rng"] = "1 2 3";
  c.tensors["param/w"] = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  c.tensors["optim/step"] = Tensor::scalar<int64_t>(17);
  c.tensors["state/empty"] = Tensor(DType::kF32, {0});
  return c;
}

}  // namespace

TEST(Checkpoint, RoundTripsEverything) {
  std::string path = test::temp_path("graft_ckpt_test.ckpt").string();
  save_checkpoint(path, sample());
  Checkpoint c = load_checkpoint(path);
  EXPECT_EQ(c.graph_fingerprint, "abc");
  EXPECT_EQ(c.step, 17);
  EXPECT_EQ(c.epoch, 2);
  EXPECT_EQ(c.info.at("rng"), "1 2 3");
  ASSERT_EQ(c.tensors.size(), 3u);
  EXPECT_EQ(c.tensors.at("param/w").to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(c.tensors.at("optim/step").to_vector<int64_t>(), (std::vector<int64_t>{17}));
  fs::remove(path);
}

TEST(Checkpoint, TruncatedOrForeignFilesAreClearErrors) {
  std::string path = test::temp_path("graft_ckpt_bad.ckpt").string();
  save_checkpoint(path, sample());
  std::string bytes = read_file(path);
  write_file_atomically(path, bytes.substr(0, bytes.size() - 3));
  // Tensors are stored in name order; param/w is the last one with bytes.
  expect_error([&] { load_checkpoint(path); }, ErrorKind::kCorruption,
               "tensor 'param/w' lies past the end of the file");
  write_file_atomically(path, bytes.substr(0, 20));
  expect_error([&] { load_checkpoint(path); }, ErrorKind::kCorruption, "truncated checkpoint header");
  write_file_atomically(path, "hello world, not a checkpoint");
  expect_error([&] { load_checkpoint(path); }, ErrorKind::kCorruption, path + ": not a graft checkpoint");
  fs::remove(path);
}

TEST(Checkpoint, FingerprintFollowsStructureNotValues) {
  Graph g;
  g.opset = 13;
  g.initializers["w"] = Tensor::from_vector<float>({2}, {1, 2});
  g.trainable = {"w"};
  Node n;
  n.name = "n";
  n.op_type = "Relu";
  n.inputs = {"w"};
  n.outputs = {"y"};
  g.nodes = {n};
  std::string a = graph_fingerprint(g);
  g.initializers["w"].data<float>()[0] = 5;
  EXPECT_EQ(graph_fingerprint(g), a);
  g.initializers["w"] = Tensor(DType::kF32, {3});
  EXPECT_NE(graph_fingerprint(g), a);
}
