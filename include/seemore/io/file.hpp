// seemore/io/file.hpp — reading whole files with errors that name the path.
#pragma once

#include <seemore/config.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

namespace seemore::io {

inline std::string read_file_bytes(const std::string& path, uint64_t max_bytes = uint64_t(1) << 34) {
  struct stat sb {};
  SEEMORE_CHECK(::stat(path.c_str(), &sb) == 0, path, ": no such file");
  SEEMORE_CHECK(!S_ISDIR(sb.st_mode), path, ": is a directory, expected a file");
  SEEMORE_CHECK(uint64_t(sb.st_size) <= max_bytes, path, ": file of ", sb.st_size, " bytes is larger than the limit of ",
                max_bytes);
  std::ifstream f(path, std::ios::binary);
  SEEMORE_CHECK(f.good(), path, ": cannot open for reading");
  std::string bytes(size_t(sb.st_size), '\0');
  f.read(bytes.data(), std::streamsize(bytes.size()));
  SEEMORE_CHECK(f.gcount() == std::streamsize(bytes.size()), path, ": read failed");
  return bytes;
}

inline bool is_directory(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}

inline bool file_exists(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0;
}

// The directory holding `path` ("." for a bare name) and the name within it.
inline std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// `mkdir -p` without a shell: every missing directory along `path`.
inline void make_directories(const std::string& path) {
  SEEMORE_CHECK(!path.empty(), "make_directories: empty path");
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    const std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      detail::fail(part, ": cannot create directory: ", std::strerror(errno));
  }
  SEEMORE_CHECK(is_directory(path), path, ": exists and is not a directory");
}

}  // namespace seemore::io
