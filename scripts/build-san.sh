#!/usr/bin/env bash
# Configures and builds build-san/: clang, AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer comes with ASan), the libFuzzer harnesses, no CUDA.
# Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-deps.sh" clang libclang-rt-14-dev libomp-dev
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DSEEMORE_SANITIZE=ON -DSEEMORE_FUZZ=ON -DSEEMORE_CUDA=OFF -DSEEMORE_BUILD_BENCHMARKS=OFF \
  -DSEEMORE_BUILD_PRECOMPILED=OFF "${launcher[@]}" "$@" >/dev/null
cmake --build build-san -j"$(nproc)"
