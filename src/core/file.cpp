#include "graft/file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "core/fault.h"
#include "graft/error.h"

namespace graft {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void io_fail(const std::string& path, const char* what, int err) {
  fail(ErrorKind::kIO, "{}: {} failed: {}{}", path, what, std::strerror(err),
       err == ENOSPC ? " (the disk is full)" : "");
}

std::string folder_of(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// ".NAME.tmp.PID.SEQ": SEQ tells apart two writes of one target in one process.
std::string temp_name(const std::string& target_name) {
  static std::atomic<unsigned long> sequence{0};
  return "." + target_name + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(sequence++);
}

// The target and writer of a temporary file's name; pid 0 if it is not one.
std::pair<std::string, long> parse_temp_name(const std::string& file_name) {
  const size_t tmp = file_name.rfind(".tmp.");
  if (file_name.empty() || file_name[0] != '.' || tmp == std::string::npos || tmp < 2) return {"", 0};
  const std::string_view rest = std::string_view(file_name).substr(tmp + 5);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || !all_digits(rest.substr(0, dot)) || !all_digits(rest.substr(dot + 1)))
    return {"", 0};
  const long pid = std::stol(std::string(rest.substr(0, dot)));
  return {file_name.substr(1, tmp - 1), pid};
}

bool process_alive(long pid) {
  return pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Makes renames in `dir` durable.
void sync_folder(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// A written and flushed temporary file next to its target; removed unless committed.
class TempFile {
 public:
  TempFile(const std::string& target, std::string_view bytes) : target_(target) {
    const std::string name = fs::path(target).filename().string();
    remove_stale_temporaries(folder_of(target), name);  // also frees their space on a full disk
    const std::string path = (fs::path(folder_of(target)) / temp_name(name)).string();
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
      // Our pid and sequence number, yet not ours: left by an earlier process
      // that had our pid (pids are reused, e.g. in a restarted container).
      ::unlink(path.c_str());
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0) io_fail(target, "creating a temporary file", errno);
    file_.path = path;  // from here on, a throw removes it (a member's destructor runs)
    file_.fd = fd;
    write_all(bytes.substr(0, bytes.size() / 2));
    fault_point("half-write:", name);
    write_all(bytes.substr(bytes.size() / 2));
    if (::fsync(file_.fd) != 0) io_fail(target, "flushing", errno);
    const int closing = std::exchange(file_.fd, -1);
    if (::close(closing) != 0) io_fail(target, "closing", errno);
    fault_point("write:", name);
  }

  void commit() {
    fault_point("rename:", fs::path(target_).filename().string());
    if (::rename(file_.path.c_str(), target_.c_str()) != 0) io_fail(target_, "renaming into place", errno);
    file_.path.clear();  // renamed: nothing to remove
  }
  const std::string& target() const { return target_; }

 private:
  struct Owned {
    std::string path;
    int fd = -1;
    Owned() = default;
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() {
      if (fd >= 0) ::close(fd);
      if (!path.empty()) ::unlink(path.c_str());
    }
  };

  void write_all(std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(file_.fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) io_fail(target_, "writing", n < 0 ? errno : ENOSPC);
      done += static_cast<size_t>(n);
    }
  }

  std::string target_;
  Owned file_;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  TempFile tmp(path, bytes);
  tmp.commit();
  sync_folder(folder_of(path));
}

void write_files_atomically(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::unique_ptr<TempFile>> staged;
  for (const auto& [path, bytes] : files) staged.push_back(std::make_unique<TempFile>(path, bytes));
  std::set<std::string> folders;
  for (auto& t : staged) {
    t->commit();
    folders.insert(folder_of(t->target()));
  }
  for (const std::string& dir : folders) sync_folder(dir);
}

void remove_stale_temporaries(const std::string& dir, const std::string& name) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file_name = it->path().filename().string();
    auto [target, pid] = parse_temp_name(file_name);
    if (pid <= 0 || (!name.empty() && target != name) || process_alive(pid)) continue;
    ::unlink(it->path().c_str());  // best effort
  }
}

bool is_temporary_file_name(const std::string& file_name) { return parse_temp_name(file_name).second > 0; }

void check_folder_writable(const std::string& dir) {
  const std::string probe = (fs::path(dir) / temp_name("graft-probe")).string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    fail(ErrorKind::kIO, "{}: cannot write to this folder: {}", dir, std::strerror(err));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  GRAFT_CHECK(f.good(), kNotFound, "{}: cannot open file", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  GRAFT_CHECK(!f.bad(), kIO, "{}: read failed", path);
  return ss.str();
}

}  // namespace graft
