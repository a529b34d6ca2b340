#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest.
# GPU tests report "skipped" on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
cd build
ctest --output-on-failure -j"$(nproc)"
