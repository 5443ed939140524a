#include "graft/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "graft/error.h"

namespace graft {

namespace {

// Closes and removes the temporary file unless released.
struct TempFile {
  std::string path;
  int fd = -1;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

[[noreturn]] void io_fail(const std::string& path, const char* what, int err) {
  fail(ErrorKind::kIO, "{}: {} failed: {}{}", path, what, std::strerror(err),
       err == ENOSPC ? " (the disk is full)" : "");
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  TempFile tmp;
  tmp.path = path + ".tmp" + std::to_string(::getpid());
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tmp.fd < 0) {
    int err = errno;
    tmp.path.clear();  // nothing was created
    io_fail(path, "creating a temporary file", err);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(tmp.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) io_fail(path, "writing", n < 0 ? errno : ENOSPC);
    done += static_cast<size_t>(n);
  }
  if (::fsync(tmp.fd) != 0) io_fail(path, "flushing", errno);
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) io_fail(path, "closing", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) io_fail(path, "renaming into place", errno);
  tmp.path.clear();  // renamed: nothing to remove
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
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
