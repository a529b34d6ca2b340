#!/usr/bin/env bash
# One command for a GPU machine: builds the CUDA targets, runs the `cuda`
# tests, compute-sanitizer (memcheck on the test binary, racecheck on the
# attention kernels), the CUDA microbenchmarks, the end-to-end training-step
# benchmark, and PyTorch on the same GPU; writes summary.md and every log into
# the folder given as its argument.
#
#   scripts/gpu-check.sh OUT_DIR
#
# Dependencies: the CUDA toolkit and CMake on the machine; our Debian packages
# either installed or copied into .gpu-deps/ beforehand (scripts/gpu-deps.sh on
# a Debian machine), found through CMAKE_PREFIX_PATH. Budget: under 8 minutes
# on an H100 (the build is most of it: only this card's architecture is compiled).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
summary="$out/summary.md"
start=$(date +%s)
export PATH=/usr/local/cuda/bin:$PATH
deps="$root/.gpu-deps/usr"
if [ -d "$deps" ]; then
  export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  prefix=(-DCMAKE_PREFIX_PATH="$deps" -DCMAKE_INCLUDE_PATH="$deps/include")
else
  prefix=()
fi
step() { echo "== $1 ($(( $(date +%s) - start )) s)" | tee -a "$out/progress.log"; }
failed=0
# result STEP TEXT LOG: a row of the summary; a TEXT that is not ok/pass/clean counts as a failure.
result() {
  echo "| $1 | $2 | $3 |" >>"$summary"
  case "$2" in ok*|pass*|clean*) ;; *) failed=$((failed + 1)) ;; esac
}

{
  echo "# seemore GPU check"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "- nvcc: $(nvcc --version | tail -1)"
  echo
  echo "| step | result | log |"
  echo "|---|---|---|"
} >"$summary"

# ---- build: this card's architecture only
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
arch=${SEEMORE_GPU_ARCH:-${cap:-90}}
step "configure (sm_$arch)"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSEEMORE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DSEEMORE_NATIVE=ON "${prefix[@]}" >"$out/configure.log" 2>&1
rc=$?
result configure "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")" configure.log
step build
targets=(seemore_cuda_tests seemore-microbench-cuda seemore-bench-cuda seemore-train-cuda seemore-caption-cuda
         seemore-train seemore-caption seemore-synth)
cmake --build build-gpu --parallel "$(nproc)" --target "${targets[@]}" >"$out/build.log" 2>&1
rc=$?
result build "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc): $(grep -m1 -E 'error' "$out/build.log")")" build.log
if [ $rc != 0 ]; then
  echo "build failed; see build.log" | tee -a "$summary"
  exit 1
fi
bin=build-gpu

# ---- tests
step "cuda tests"
(cd $bin && timeout 300 ./tests/cuda/seemore_cuda_tests) >"$out/cuda_tests.log" 2>&1
rc=$?
result "cuda tests (GPU vs CPU)" "$([ $rc = 0 ] && echo pass || echo "FAILED ($rc)"): $(tail -1 "$out/cuda_tests.log")" cuda_tests.log

# ---- compute-sanitizer
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
# memcheck: the tests that launch every kernel at least once (the training
# steps run the whole model); the long shape sweeps add nothing to it.
step "memcheck"
(cd $bin && timeout 240 "$sanitizer" --tool memcheck --error-exitcode 3 \
   ./tests/cuda/seemore_cuda_tests round_trip,elementwise,dropout_same_mask,layout,adam,attention_small,training_step,generate) \
   >"$out/memcheck.log" 2>&1
rc=$?
result "compute-sanitizer memcheck (every kernel)" "$([ $rc = 0 ] && echo clean || echo "FAILED ($rc)"): $(grep -m1 'ERROR SUMMARY' "$out/memcheck.log")" memcheck.log
step "racecheck"
(cd $bin && timeout 120 "$sanitizer" --tool racecheck --error-exitcode 3 \
   ./tests/cuda/seemore_cuda_tests attention_small,rows) >"$out/racecheck.log" 2>&1
rc=$?
result "compute-sanitizer racecheck (attention, row kernels)" "$([ $rc = 0 ] && echo clean || echo "FAILED ($rc)"): $(grep -m1 'ERROR SUMMARY\|RACECHECK SUMMARY' "$out/racecheck.log")" racecheck.log

# ---- benchmarks
step "microbenchmarks"
timeout 180 $bin/benchmarks/seemore-microbench-cuda --reps 50 --json "$out/microbench.jsonl" >"$out/microbench.log" 2>&1
rc=$?
result "CUDA microbenchmarks" "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")" microbench.log
step "training step"
timeout 120 $bin/benchmarks/seemore-bench-cuda --device cuda --steps 30 --warmup 5 >"$out/bench_cuda.log" 2>&1
rc=$?
result "seemore-bench --device cuda" "$([ $rc = 0 ] && grep -m1 'training step' "$out/bench_cuda.log" || echo "FAILED ($rc)")" bench_cuda.log
step "PyTorch side by side"
py=$(command -v python3 || echo python)
timeout 240 "$py" benchmarks/side_by_side.py --bench $bin/benchmarks/seemore-bench-cuda --device cuda --steps 20 \
  --compile --json "$out/side_by_side.json" >"$out/side_by_side.log" 2>&1
rc=$?
result "PyTorch side by side (cuda)" "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")" side_by_side.log
step "train and caption from the command line"
cli="$out/cli"
mkdir -p "$cli"
{
  $bin/examples/seemore-synth --out "$cli/data" --count 400 --seed 1 &&
  $bin/examples/seemore-train --device cuda --data "$cli/data/captions.jsonl" --config examples/demo_config.json \
    --steps 300 --batch-size 32 --eval-interval 100 --eval-iters 5 --out "$cli/run" --quiet &&
  $bin/examples/seemore-caption --device cuda --checkpoint "$cli/run/model.safetensors" \
    --eval "$cli/data/captions.jsonl" --examples 3
} >"$out/cli.log" 2>&1
rc=$?
result "seemore-train/caption --device cuda (demo config, 300 steps)" "$([ $rc = 0 ] && echo "ok: $(grep -m1 'train_loss' "$out/cli.log"); $(grep -m1 'exact-match' "$out/cli.log")" || echo "FAILED ($rc)")" cli.log

{
  echo
  echo "## Microbenchmarks"
  echo '```'
  cat "$out/microbench.log"
  echo '```'
  echo "## Training step"
  echo '```'
  cat "$out/bench_cuda.log"
  echo '```'
  echo "## PyTorch side by side"
  echo '```'
  tail -15 "$out/side_by_side.log"
  echo '```'
  echo
  echo "total: $(( $(date +%s) - start )) s; $failed step(s) failed"
} >>"$summary"
step done
cat "$summary"
[ "$failed" = 0 ]
