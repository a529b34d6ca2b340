#!/usr/bin/env bash
# Copies the files of the Debian packages a seemore build needs into
# .gpu-deps/ (git-ignored), keeping their /usr layout, for a GPU machine that
# has the CUDA toolkit and CMake but no apt. scripts/gpu-check.sh finds them
# there (CMAKE_PREFIX_PATH, LD_LIBRARY_PATH). Run on a Debian machine after
# scripts/install-deps.sh.
set -eu
cd "$(dirname "$0")/.."
pkgs="libeigen3-dev nlohmann-json3-dev catch2 libstb-dev libstb0 libcli11-dev libbenchmark-dev libbenchmark1debian
      libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo zlib1g-dev libgif-dev libgif7 libwebp-dev libwebp7 libwebpdemux2
      libtiff-dev libtiff6 libdeflate0 libjbig0 liblerc4 libzstd1"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || { echo "not installed: $p (apt-get install $p)" >&2; exit 1; }
  # Regular files and links only; documentation stays behind.
  dpkg -L "$p" | grep -v -E '^/usr/share/(doc|man|lintian)/' | while read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then echo "${f#/}"; fi
  done >>"$list"
done
rm -rf .gpu-deps
mkdir -p .gpu-deps
tar -C / --no-recursion -cf - -T "$list" | tar -C .gpu-deps -xf -
# A link to an absolute path (libz.so -> /lib/...) would point into the other
# machine's system: put the file itself there instead.
find .gpu-deps -type l -lname '/*' | while read -r l; do cp --remove-destination "$(readlink -f "$l")" "$l"; done
du -sh .gpu-deps
