#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "graft/npy.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  fs::path dir = test::temp_path("graft_npy_test");
  fs::create_directories(dir);
  std::vector<Tensor> tensors = {
      Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6}),
      Tensor::from_vector<int64_t>({4}, {-1, 0, 1, int64_t{1} << 40}),
      Tensor::scalar<double>(2.5),
      Tensor::from_vector<uint8_t>({1, 1, 2}, {7, 255}),
      Tensor(DType::kBool, {0, 3}),
  };
  for (const Tensor& t : tensors) {
    std::string p = (dir / "t.npy").string();
    save_npy(p, t);
    Tensor r = load_npy(p);
    EXPECT_EQ(r.dtype(), t.dtype());
    EXPECT_EQ(r.shape(), t.shape());
    EXPECT_EQ(0, std::memcmp(r.raw(), t.raw(), t.nbytes()));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temporary left
  }
  fs::remove_all(dir);
}

TEST(Npy, ReadsWhatNumpyWrites) {
  // np.save of np.arange(6, dtype='<f4').reshape(2, 3), header written by numpy 1.24.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header.append(117 - header.size(), ' ');
  header += '\n';
  fs::path p = test::temp_path("graft_numpy.npy");
  {
    std::ofstream f(p, std::ios::binary);
    f.write("\x93NUMPY\x01\x00\x76\x00", 10);
    f << header;
    for (int i = 0; i < 6; ++i) {
      float v = static_cast<float>(i);
      f.write(reinterpret_cast<const char*>(&v), 4);
    }
  }
  Tensor t = load_npy(p.string());
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  fs::remove(p);
}

TEST(NpyErrors, NamesTheFile) {
  fs::path p = test::temp_path("graft_bad.npy");
  { std::ofstream(p) << "definitely not numpy"; }
  expect_error([&] { load_npy(p.string()); }, ErrorKind::kCorruption, p.string() + ": not a .npy file");
  Tensor t = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  save_npy(p.string(), t);
  fs::resize_file(p, fs::file_size(p) - 4);  // truncated data
  expect_error([&] { load_npy(p.string()); }, ErrorKind::kCorruption, "needs 16");
  expect_error([&] { load_npy("/nonexistent.npy"); }, ErrorKind::kNotFound, "/nonexistent.npy");
  fs::remove(p);
}
