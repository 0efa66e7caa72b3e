// recdistill/io/atomic_file.hpp: write a whole file or nothing (temporary file in the same
// folder, fsync, rename, fsync of the folder), so a crash never leaves a half-written output:
// the target holds either its previous bytes or the new ones. A crash can leave a stale
// "<path>.tmp.<pid>" beside it, which nothing ever reads.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "recdistill/core/error.hpp"

namespace recdistill::io {

inline void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(path, ": cannot create temporary file ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, ": write failed: ", std::strerror(e));
    }
    done += size_t(w);
  }
  // Close whatever fsync said (no descriptor leaks); the first failure is the one reported.
  const int synced = ::fsync(fd);
  const int sync_errno = errno;
  const int closed = ::close(fd);
  if (synced != 0 || closed != 0) {
    const int e = synced != 0 ? sync_errno : errno;
    ::unlink(tmp.c_str());
    fail(path, ": ", synced != 0 ? "fsync" : "close", " failed: ", std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(path, ": rename from ", tmp, " failed: ", std::strerror(e));
  }
  // The rename is durable only once the folder's entry is on disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: some file systems refuse fsync on a folder
    ::close(dfd);
  }
}

}  // namespace recdistill::io
