#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <sys/wait.h>
#include <unistd.h>

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

namespace {

// The pid of a process that has exited (and been reaped).
long dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST(WriteFileAtomically, RemovesTheTemporariesOfKilledWritersOnly) {
  fs::path dir = test::temp_path("graft_file_test3");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string dead = ".a.bin.tmp." + std::to_string(dead_pid()) + ".0";
  const std::string alive = ".a.bin.tmp.1.0";  // init never exits
  const std::string other = ".b.bin.tmp." + std::to_string(dead_pid()) + ".3";
  for (const std::string& n : {dead, alive, other}) std::ofstream(dir / n) << "partial";
  EXPECT_TRUE(is_temporary_file_name(dead));
  EXPECT_FALSE(is_temporary_file_name("a.bin"));
  EXPECT_FALSE(is_temporary_file_name(".a.bin.tmp.12"));
  EXPECT_FALSE(is_temporary_file_name(".a.bin.tmp.x.1"));
  write_file_atomically((dir / "a.bin").string(), "whole");
  EXPECT_FALSE(fs::exists(dir / dead));  // a's, of a killed writer
  EXPECT_TRUE(fs::exists(dir / alive));  // a's, of a writer still running
  EXPECT_TRUE(fs::exists(dir / other));  // another target's: left to its own writes
  remove_stale_temporaries(dir.string());
  EXPECT_FALSE(fs::exists(dir / other));
  EXPECT_TRUE(fs::exists(dir / alive));
  fs::remove_all(dir);
}

TEST(WriteFilesAtomically, AFailureReplacesNone) {
  fs::path dir = test::temp_path("graft_file_test4");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string a = (dir / "a.txt").string(), b = (dir / "b.txt").string();
  write_files_atomically({{a, "a1"}, {b, "b1"}});
  EXPECT_EQ(read_file(a), "a1");
  EXPECT_EQ(read_file(b), "b1");
  // The last file cannot be staged: the first must not have been replaced.
  expect_error([&] { write_files_atomically({{a, "a2"}, {(dir / "missing" / "c.txt").string(), "c2"}}); },
               ErrorKind::kIO, "c.txt: creating a temporary file failed");
  EXPECT_EQ(read_file(a), "a1");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);  // no temporaries
  fs::remove_all(dir);
}

TEST(CheckFolderWritable, NamesTheFolder) {
  fs::path dir = test::temp_path("graft_file_test5");
  fs::create_directories(dir);
  check_folder_writable(dir.string());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0);  // the probe is gone
  expect_error([&] { check_folder_writable((dir / "missing").string()); }, ErrorKind::kIO,
               (dir / "missing").string() + ": cannot write to this folder: No such file or directory");
  fs::remove_all(dir);
}
