#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains a small model on
# the CPU, printing its falling loss.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEMORE_TARGETS=tiny_train scripts/build.sh
./build/examples/tiny_train
