// Crash-safe training: `graft train` is killed with SIGKILL, at injected
// fault points (src/core/fault.h) and at random moments, then run again with
// --resume until it completes. After every kill the output folder holds only
// whole files; the finished run's metrics and model equal an uninterrupted run's.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>

#include "graft/file.h"
#include "test_util.h"
#include "train_fixture.h"

extern char** environ;

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

struct GraftRun {
  bool killed = false;  // ended by SIGKILL
  int status = -1;      // the exit status otherwise
  std::string output;
};

// Runs `graft ARGS`, with GRAFT_FAULT_KILL_AT=fault when given, and SIGKILLs
// it after `kill_after` if it is still running then.
GraftRun run_graft(const std::string& args, const fs::path& log, const std::string& fault = "",
                   std::optional<std::chrono::microseconds> kill_after = std::nullopt) {
  std::string script = (fault.empty() ? "" : "export GRAFT_FAULT_KILL_AT='" + fault + "'; ") + "exec " +
                       std::string(GRAFT_BINARY) + " " + args + " >'" + log.string() + "' 2>&1";
  const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
  pid_t pid;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    ADD_FAILURE() << "cannot start /bin/sh";
    return {};
  }
  int status = 0;
  if (kill_after) {
    const auto deadline = std::chrono::steady_clock::now() + *kill_after;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  } else {
    waitpid(pid, &status, 0);
  }
  GraftRun r;
  r.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.output = fs::exists(log) ? read_file(log.string()) : "";
  return r;
}

class CrashResume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("graft_crash_resume_" + std::to_string(::getpid()));
    write_two_colour_images(dir_);
    // The reference: the same deterministic recipe, never interrupted; twice,
    // for the shorter time (the first run reads a cold model file).
    for (const char* out : {"whole", "whole_again"}) {
      const auto start = std::chrono::steady_clock::now();
      GraftRun whole = run_graft(args(out) + " --no-cache", dir_ / "whole.log");
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      whole_seconds_ = whole_seconds_ > 0 ? std::min(whole_seconds_, seconds) : seconds;
      ASSERT_EQ(whole.status, 0) << whole.output;
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // 4 epochs of 4 steps (16 images, batch 4); dropout draws from the seeded
  // per-step stream, so a resumed epoch sees the same masks.
  static std::string args(const std::string& out) {
    std::string a = seed_train_args(dir_, (dir_ / out).string());
    a = a.substr(0, a.find(" --no-cache")) + a.substr(a.find(" --no-cache") + 11);
    return a + " --epochs " + std::to_string(kEpochs) +
           " --batch 4 --schedule constant --hidden 8 --dropout 0.3 --seed 3 --workers 2";
  }

  // The finished run in `out` against the uninterrupted one.
  static void expect_equals_whole(const std::string& out) {
    EXPECT_EQ(metrics_without_time((dir_ / out / "metrics.jsonl").string()),
              metrics_without_time((dir_ / "whole/metrics.jsonl").string()));
    EXPECT_TRUE(read_file((dir_ / out / "model.onnx").string()) == read_file((dir_ / "whole/model.onnx").string()))
        << out << "/model.onnx differs from the uninterrupted run's";
    EXPECT_EQ(read_file((dir_ / out / "labels.txt").string()), read_file((dir_ / "whole/labels.txt").string()));
    for (const auto& e : fs::directory_iterator(dir_ / out))
      EXPECT_FALSE(is_temporary_file_name(e.path().filename().string()))
          << e.path() << " is left after the run completed";
  }

  static constexpr int kEpochs = 4;
  static fs::path dir_;
  static double whole_seconds_;
};

fs::path CrashResume::dir_;
double CrashResume::whole_seconds_ = 0;

}  // namespace

TEST_F(CrashResume, TheRecipeIsDeterministic) {
  // What the other tests rely on: two uninterrupted runs agree.
  expect_equals_whole("whole_again");
}

TEST_F(CrashResume, KillsAtInjectedPointsThenResumeGivesTheUninterruptedRun) {
  // One folder, killed again and again, each run resuming the last: the
  // points in the order a run reaches them (counts are per process).
  const std::vector<std::pair<std::string, std::string>> kills = {
      {"features", "the training images' features computed and cached, not the test images'"},
      {"write:checkpoint.ckpt", "the first checkpoint flushed to its temporary file, not renamed"},
      {"step@3", "mid-epoch 1, no checkpoint yet"},
      {"half-write:checkpoint.ckpt@2", "epoch 2's checkpoint half written"},
      {"step@6", "resumed at epoch 2, mid-epoch 3"},
      {"rename:checkpoint.ckpt@2", "resumed at epoch 3, epoch 4's checkpoint about to be renamed"},
      {"write:report.html", "the outputs staged, none renamed"},
      {"rename:model.onnx", "labels, metrics and report renamed, not the model"},
  };
  const std::string cache = " --cache-dir " + (dir_ / "cache").string();
  for (size_t i = 0; i < kills.size(); ++i) {
    const auto& [point, when] = kills[i];
    GraftRun r = run_graft(args("chain") + cache + " --resume", dir_ / "chain.log", point);
    ASSERT_TRUE(r.killed) << point << " (" << when << ") was not reached; status " << r.status << "\n" << r.output;
    if (i == 1) {  // the first --resume found nothing to resume: a fresh start, said so
      EXPECT_NE(r.output.find("no checkpoint in"), std::string::npos) << r.output;
    }
    expect_only_whole_outputs(dir_ / "chain", kEpochs, "after the kill at " + point + ": " + when);
  }
  EXPECT_FALSE(fs::exists(dir_ / "chain/model.onnx"));
  EXPECT_TRUE(fs::exists(dir_ / "chain/report.html"));
  GraftRun last = run_graft(args("chain") + cache + " --resume", dir_ / "chain.log");
  ASSERT_EQ(last.status, 0) << last.output;
  expect_only_whole_outputs(dir_ / "chain", kEpochs, "after the run completed");
  expect_equals_whole("chain");
}

TEST_F(CrashResume, KillsAtRandomMomentsThenResumeGivesTheUninterruptedRun) {
  // GRAFT_CRASH_SEED=N replays a failure's kill times (as closely as timing allows).
  const char* given = std::getenv("GRAFT_CRASH_SEED");
  const unsigned seed = given ? static_cast<unsigned>(std::stoul(given)) : std::random_device{}();
  SCOPED_TRACE("GRAFT_CRASH_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> moment(0.0, whole_seconds_);
  // Rounds from an empty folder, each killed until a run outlives its kill.
  int kills = 0;
  for (int round = 0; round < 3; ++round) {
    fs::remove_all(dir_ / "random");
    // Even rounds with a feature cache of their own: kills while it is appended to.
    const std::string cache = round % 2 ? " --no-cache"
                                        : " --cache-dir " + (dir_ / ("cache_random" + std::to_string(round))).string();
    for (int attempt = 0; attempt < 10; ++attempt) {
      // A round's first kill lands in the first half of a run, so it lands even
      // when this run is faster than the measured one (a quieter machine).
      const double at = attempt == 0 ? moment(rng) / 2 : moment(rng);
      const auto after = std::chrono::microseconds(static_cast<int64_t>(at * 1e6));
      GraftRun r = run_graft(args("random") + cache + " --resume", dir_ / "random.log", "", after);
      if (!r.killed) {
        ASSERT_EQ(r.status, 0) << r.output;
        break;
      }
      ++kills;
      expect_only_whole_outputs(dir_ / "random", kEpochs,
                                "after a kill at " + std::to_string(after.count() / 1000) + " ms");
    }
    GraftRun last = run_graft(args("random") + cache + " --resume", dir_ / "random.log");
    ASSERT_EQ(last.status, 0) << last.output;
    expect_only_whole_outputs(dir_ / "random", kEpochs, "after the run completed");
    expect_equals_whole("random");
  }
  EXPECT_GE(kills, 2);  // each round's first kill lands almost surely
  std::cout << "[          ] " << kills << " random kills; an uninterrupted run takes " << whole_seconds_ << " s\n";
}
