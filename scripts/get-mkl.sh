#!/usr/bin/env bash
# Fetches Intel's MKL from PyPI (the `mkl` wheel: shared libraries only) into
# DIR (default: .mkl in the repository, git-ignored) and prints the setting
# that hands seemore's float GEMMs to it:
#
#   scripts/get-mkl.sh [DIR]
#   export SEEMORE_BLAS=$PWD/.mkl/lib/libmkl_rt.so.2
#
# Optional: seemore builds, trains and passes its tests on its own kernels. MKL is
# Intel's, under its own licence; it is downloaded here, never committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.mkl}
version=${SEEMORE_MKL_VERSION:-2024.2.0}  # the version docs/benchmarks.md measured
if ! python3 -m pip --version >/dev/null 2>&1; then
  "$root/scripts/install-deps.sh" python3-pip
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
  --python-version 3 --implementation py "mkl==$version" -d "$tmp"
mkdir -p "$dir/lib"
python3 - "$tmp" "$dir/lib" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "mkl-*.whl"))[0]
# The single dynamic library, its core, the LP64 interfaces, the sequential and
# GNU OpenMP layers and the CPU kernels: 0.35 of the wheel's 0.55 GB.
keep = ("libmkl_rt.", "libmkl_core.", "libmkl_intel_lp64.", "libmkl_gf_lp64.", "libmkl_sequential.",
        "libmkl_gnu_thread.", "libmkl_def.", "libmkl_mc3.", "libmkl_avx2.", "libmkl_avx512.")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if "/data/lib/" in name and os.path.basename(name).startswith(keep):
            with z.open(name) as src, open(os.path.join(sys.argv[2], os.path.basename(name)), "wb") as dst:
                dst.write(src.read())
PY
lib="$(cd "$dir/lib" && pwd)/libmkl_rt.so.2"
[ -f "$lib" ] || { echo "get-mkl.sh: $lib is missing from the wheel" >&2; exit 1; }
echo "MKL $version in $dir/lib; to use it:"
echo "  export SEEMORE_BLAS=$lib"
