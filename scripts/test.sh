#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest.
# GPU tests report "skipped" on a machine without a GPU. ctest's summary line
# is repeated as the very last line, for whoever reads only the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
(cd build && ctest --output-on-failure -j"$(nproc)") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
grep -E "tests passed, [0-9]+ tests failed out of" "$log" | tail -n 1
exit "$rc"
