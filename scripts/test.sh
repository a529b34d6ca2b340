#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest twice:
#   build/      g++ Release: every test (GPU tests report "skipped" without a GPU)
#   build-san/  clang with AddressSanitizer + UndefinedBehaviorSanitizer (and
#               LeakSanitizer): the same tests, minus the two that only compile
#               or install, plus a 30-second run of each fuzzer.
# SEEMORE_SANITIZE_TESTS=0 skips the second pass. Extra arguments go to cmake
# for build/. ctest's summary lines are repeated at the very end, for whoever
# reads only the end.
set -euo pipefail
cd "$(dirname "$0")/.."
summaries=()
rc=0
run_ctest() {  # run_ctest DIR LABEL [ctest args...]
  local dir=$1 label=$2 log r
  shift 2
  log=$(mktemp)
  set +e
  (cd "$dir" && ctest --output-on-failure -j"$(nproc)" "$@") 2>&1 | tee "$log"
  r=${PIPESTATUS[0]}
  set -e
  summaries+=("$label: $(grep -E "tests passed, [0-9]+ tests failed out of" "$log" | tail -n 1)")
  rm -f "$log"
  if [ "$r" -ne 0 ]; then rc=$r; fi
}

scripts/build.sh "$@"
run_ctest build "build (g++, Release)"

if [ "${SEEMORE_SANITIZE_TESTS:-1}" != 0 ]; then
  scripts/build-san.sh
  # halt_on_error: a report fails its test; LSan runs at exit (detect_leaks).
  # cuda.emulated_device (minutes under ASan) is left to the first pass; the
  # kernels' emulated tests, part of the Catch2 suite, do run here.
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-san "build-san (clang, ASan+UBSan+LSan, fuzzers)" \
      -E '^(headers\.self_contained|package\.install_and_consume|cuda\.emulated_device)$'
fi

printf '%s\n' "${summaries[@]}"
exit "$rc"
