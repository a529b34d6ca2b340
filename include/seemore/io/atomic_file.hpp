// seemore/io/atomic_file.hpp — write a file so that a crash leaves either the
// old file or the complete new one: temp file in the same directory, fsync,
// rename over the target, fsync the directory.
#pragma once

#include <seemore/config.hpp>
#include <seemore/io/file.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace seemore::io {

inline void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SEEMORE_CHECK(fd >= 0, path, ": cannot create '", tmp, "': ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      detail::fail(path, ": write failed: ", std::strerror(e));
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    detail::fail(path, ": fsync/close failed: ", std::strerror(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    detail::fail(path, ": rename failed: ", std::strerror(e));
  }
  const int dfd = ::open(split_path(path).first.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// A writer killed between creating its temp file and the rename leaves
// `path.tmp.<pid>` behind. Removes those whose process no longer exists (a
// live one may be writing right now); returns how many were removed.
inline int remove_stale_temps(const std::string& path) {
  const auto [dir, name_in_dir] = split_path(path);
  const std::string prefix = name_in_dir + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t p = pid_t(std::stol(pid));
    if (p == ::getpid() || (::kill(p, 0) != 0 && errno == ESRCH)) {
      if (::unlink((dir + "/" + name).c_str()) == 0) ++removed;
    }
  }
  ::closedir(d);
  return removed;
}

}  // namespace seemore::io
