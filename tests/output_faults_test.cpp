// Faults while graft train writes its outputs: a full disk (a small tmpfs)
// and a read-only output folder (the tmpfs remounted read-only; root ignores
// file modes, so chmod would test nothing). Each ends in one clear error
// naming the file or folder, and the previous run's files stay byte for byte.
// mount(2) needs root (CAP_SYS_ADMIN), as CI has; without it these skip.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "graft/file.h"
#include "test_util.h"
#include "train_fixture.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

// A tmpfs of `bytes` mounted at `dir` for the object's lifetime.
class Tmpfs {
 public:
  Tmpfs(fs::path dir, size_t bytes) : dir_(std::move(dir)), options_("size=" + std::to_string(bytes)) {
    fs::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options_.c_str()) != 0)
      error_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }
  const std::string& error() const { return error_; }  // empty once mounted
  bool remount(bool read_only) {
    return ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | (read_only ? MS_RDONLY : 0), options_.c_str()) == 0;
  }
  size_t free_bytes() const {
    struct statvfs s;
    return ::statvfs(dir_.c_str(), &s) == 0 ? s.f_bavail * s.f_frsize : 0;
  }
  // Fills the disk with a file until `leave` bytes are free.
  void fill_leaving(size_t leave) {
    const size_t free = free_bytes();
    ASSERT_GT(free, leave);
    std::ofstream(dir_ / "filler", std::ios::binary) << std::string(free - leave, 'x');
    ASSERT_EQ(free_bytes(), leave);
  }
  void unfill() { fs::remove(dir_ / "filler"); }

 private:
  fs::path dir_;
  std::string options_, error_;
};

class OutputFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_path("graft_output_faults");
    write_two_colour_images(dir_);
    disk_ = std::make_unique<Tmpfs>(dir_ / "disk", 8 << 20);
    if (!disk_->error().empty()) GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << disk_->error();
    out_ = (dir_ / "disk" / "out").string();
    // A finished run: the good files a fault must not touch.
    CommandResult r = graft_cli(seed_train_args(dir_, out_) + " --epochs 2");
    ASSERT_EQ(r.status, 0) << r.output;
    for (const char* f : {"model.onnx", "checkpoint.ckpt", "labels.txt", "metrics.jsonl", "report.html"})
      before_[f] = read_file(out_ + "/" + f);
  }
  void TearDown() override {
    disk_.reset();
    fs::remove_all(dir_);
  }

  // The previous run's files, byte for byte, and nothing else.
  void expect_previous_files_kept() {
    for (const auto& [name, bytes] : before_)
      EXPECT_TRUE(read_file(out_ + "/" + name) == bytes) << name << " changed";
    EXPECT_EQ(std::distance(fs::directory_iterator(out_), fs::directory_iterator()), 5)
        << "a temporary file was left behind";
  }

  fs::path dir_;
  std::unique_ptr<Tmpfs> disk_;
  std::string out_;
  std::map<std::string, std::string> before_;
};

}  // namespace

TEST_F(OutputFaults, AFullDiskDuringTrainingKeepsTheCheckpoint) {
  disk_->fill_leaving(0);
  // A new run with another seed would replace everything; its first checkpoint cannot be written.
  CommandResult r = graft_cli(seed_train_args(dir_, out_) + " --epochs 2 --seed 9");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("graft: error: " + out_ + "/checkpoint.ckpt: writing failed: No space left on device "
                          "(the disk is full)"),
            std::string::npos)
      << r.output;
  expect_previous_files_kept();
}

TEST_F(OutputFaults, AFullDiskWhileWritingOutputsReplacesNone) {
  // Resuming the finished run with other class names: only the outputs are
  // written, and labels.txt, report.html and model.onnx would change. Two
  // pages free: labels.txt and metrics.jsonl are staged, report.html is not;
  // none may be renamed into place.
  std::ofstream(dir_ / "names2.txt") << "cat\ndog\n";
  std::string args = seed_train_args(dir_, out_) + " --epochs 2 --resume";
  args.replace(args.find("names.txt"), 9, "names2.txt");
  disk_->fill_leaving(2 * 4096);
  CommandResult r = graft_cli(args);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(out_ + "/report.html: writing failed: No space left on device (the disk is full)"),
            std::string::npos)
      << r.output;
  expect_previous_files_kept();
  // Space again: the same command finishes the job.
  disk_->unfill();
  r = graft_cli(args);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(out_ + "/labels.txt"), "cat\ndog\n");
  EXPECT_EQ(read_file(out_ + "/metrics.jsonl"), before_["metrics.jsonl"]);
}

TEST_F(OutputFaults, AReadOnlyOutputFolderFailsBeforeTraining) {
  ASSERT_TRUE(disk_->remount(/*read_only=*/true)) << std::strerror(errno);
  CommandResult r = graft_cli(seed_train_args(dir_, out_) + " --epochs 2 --seed 9");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("graft: error: " + out_ + ": cannot write to this folder: Read-only file system"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("epoch"), std::string::npos) << "trained before failing:\n" << r.output;
  expect_previous_files_kept();
  // Any single write there names its file.
  expect_error([&] { write_file_atomically(out_ + "/model.onnx", "x"); }, ErrorKind::kIO,
               out_ + "/model.onnx: creating a temporary file failed: Read-only file system");
  ASSERT_TRUE(disk_->remount(/*read_only=*/false)) << std::strerror(errno);
  expect_previous_files_kept();
}
