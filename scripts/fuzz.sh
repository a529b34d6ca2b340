#!/usr/bin/env bash
# Long fuzzing runs: scripts/fuzz.sh [SECONDS [HARNESS...]]   (600 s; all five)
# Runs the harnesses one after another (each on one core) from the committed
# seeds plus what earlier runs found (build-san/fuzz/<name>/corpus), and prints
# executions and corpus size per harness. A crashing input lands in
# build-san/fuzz/<name>/artifacts/: add it to tests/fuzz/regressions/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(image csv jsonl safetensors torch config)
scripts/build-san.sh >/dev/null
printf '%-12s %8s %12s %10s %s\n' harness seconds executions exec/s result
for h in "${harnesses[@]}"; do
  log=build-san/fuzz/$h.log
  mkdir -p build-san/fuzz
  start=$(date +%s)
  if tests/fuzz/run_fuzz.sh "build-san/tests/fuzz/fuzz_$h" "$seconds" "build-san/fuzz/$h" \
      "tests/fuzz/corpus/$h" "tests/fuzz/regressions/$h" >"$log" 2>&1; then
    result="no findings"
  else
    result="FINDING: see $log"
  fi
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  printf '%-12s %8s %12s %10s %s\n' "$h" "$took" "${execs:-?}" "${per_s:-?}" "$result"
done
