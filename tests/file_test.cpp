#include <gtest/gtest.h>

#include <filesystem>

#include "graft/file.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

TEST(WriteFileAtomically, ReplacesWholeAndLeavesNoTemporary) {
  fs::path dir = test::temp_path("graft_file_test");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = (dir / "a.bin").string();
  write_file_atomically(path, "first");
  write_file_atomically(path, std::string(100000, 'x'));
  EXPECT_EQ(read_file(path), std::string(100000, 'x'));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

TEST(WriteFileAtomically, FailureKeepsThePreviousFile) {
  fs::path dir = test::temp_path("graft_file_test2");
  fs::remove_all(dir);
  fs::create_directories(dir / "target_is_a_folder" / "child");
  // Renaming a file over a non-empty folder fails after the data was written.
  std::string target = (dir / "target_is_a_folder").string();
  expect_error([&] { write_file_atomically(target, "data"); }, ErrorKind::kIO,
               target + ": renaming into place failed");
  EXPECT_TRUE(fs::is_directory(dir / "target_is_a_folder" / "child"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  expect_error([&] { write_file_atomically((dir / "missing" / "x").string(), "data"); }, ErrorKind::kIO,
               "creating a temporary file failed");
  fs::remove_all(dir);
}
