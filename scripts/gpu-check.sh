#!/usr/bin/env bash
# The GPU check, in stages that each fit one short visit to a GPU machine:
#
#   scripts/gpu-check.sh proof    OUT   ≤ 6 min (the steps' limits add up to 360 s): nvidia-smi, the CUDA tests, the one-rank NCCL step, the
#                                       kernel microbenchmarks (checked against the CPU first), the training
#                                       step next to a CPU step, 100 steps of the reference recipe on the GPU
#                                       and on the CPU (loss curves side by side), one caption
#   scripts/gpu-check.sh sanitize OUT   compute-sanitizer memcheck (caching allocator bypassed), racecheck,
#                                       initcheck, synccheck; "unsupported on this machine" says so
#   scripts/gpu-check.sh compare  OUT   PyTorch on the same card: eager, torch.compile, SDPA
#   scripts/gpu-check.sh build    OUT   fallback: build the binaries on the GPU machine (needs .gpu-deps/)
#
# The binaries come from .gpu-bundle/ (scripts/gpu-bundle.sh, built on the
# CPU machine and carried); the build stage makes the same layout there.
# OUT gets summary.md, rewritten after every step so that a stage cut off by
# its limit still says what it did (with every FAILED line of a failing
# test), and logs.tar.gz with every log: two files, well inside the 8 that
# come back. Each step runs under its own timeout; a failing test binary is
# run again with CUDA_LAUNCH_BLOCKING=1 and SEEMORE_CUDA_SYNC=1, which names
# the kernel that faults at its own launch.
set -uo pipefail
stage=${1:?usage: scripts/gpu-check.sh proof|sanitize|compare|build OUT}
out=${2:?usage: scripts/gpu-check.sh STAGE OUT}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
bundle=$root/.gpu-bundle
bin=$bundle/bin
export PATH=/usr/local/cuda/bin:$PATH
# Libraries: the bundle's, the CUDA toolkit's, NCCL's wheel, .gpu-deps for a build made here.
nccl_lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
cuda_lib=$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")/../lib64
export LD_LIBRARY_PATH="$bundle/lib:$cuda_lib:${nccl_lib:+$nccl_lib:}$root/.gpu-deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
summary=$out/summary.md
failed=0
rows=()
notes=()

write_summary() {
  {
    echo "# seemore GPU check: stage $stage"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(( $(date +%s) - start )) s so far"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || cat "$bundle/MANIFEST" 2>/dev/null | head -1)"
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
    echo "- nvcc: $(nvcc --version 2>/dev/null | tail -1)"
    [ -f "$bundle/MANIFEST" ] && sed 's/^/- bundle /' "$bundle/MANIFEST"
    echo
    echo "| step | result | seconds | log |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    printf '%s\n' "${notes[@]}"
  } > "$summary"
  tar -C "$out" -czf "$out/logs.tar.gz" logs 2>/dev/null
}

# step NAME LIMIT CMD...: runs CMD under `timeout LIMIT` into logs/NAME.log and
# adds a row: ok, FAILED (exit n), TIMEOUT, SKIPPED (exit 77) or UNSUPPORTED.
step() {
  local name=$1 limit=$2
  shift 2
  local log=$out/logs/$name.log t0 rc result
  t0=$(date +%s)
  echo "== $name (limit ${limit} s, at $(( t0 - start )) s)"
  timeout --kill-after=5 "$limit" "$@" > "$log" 2>&1
  rc=$?
  if [ $rc = 0 ]; then result=ok
  elif [ $rc = 77 ]; then result="SKIPPED: $(tail -1 "$log")"
  elif [ $rc = 124 ] || [ $rc = 137 ]; then result="TIMEOUT after ${limit} s"; failed=$((failed + 1))
  elif grep -qiE "device not supported|not supported on this (device|machine|platform)|unsupported (device|GPU)|error 999" "$log"; then
    result="UNSUPPORTED on this machine: $(grep -m1 -iE 'not supported|unsupported|error 999' "$log" | cut -c1-150)"
  else result="FAILED (exit $rc)"; failed=$((failed + 1))
  fi
  local failing
  failing=$(grep -E '^(FAILED|FAIL |=========  ERROR|.*ERROR SUMMARY: [1-9])' "$log" | head -20 | cut -c1-200 | sed 's/|/\\|/g' | paste -sd ';' -)
  [ -n "$failing" ] && result="$result: $failing"
  rows+=("| $name | $result | $(( $(date +%s) - t0 )) | logs/$name.log |")
  write_summary
  return $rc
}
# A test binary that fails is run once more with every launch synchronised,
# so the first kernel that faults is the one named.
test_step() {
  local name=$1 limit=$2 rerun_limit=$3
  shift 3
  step "$name" "$limit" "$@"
  local rc=$?
  if [ $rc = 0 ] || [ $rc = 77 ]; then return $rc; fi
  CUDA_LAUNCH_BLOCKING=1 SEEMORE_CUDA_SYNC=1 step "$name-blocking" "$rerun_limit" "$@"
}
need_bundle() {
  if [ ! -x "$bin/seemore_cuda_tests" ]; then
    rows+=("| binaries | FAILED: no $bin (scripts/gpu-bundle.sh on the CPU machine, or stage build here) | 0 | - |")
    failed=$((failed + 1))
    write_summary
    exit 1
  fi
}
write_summary
# Checkpoints and data stay out of logs/ (logs.tar.gz must come back small).
work=$(mktemp -d /tmp/seemore-gpu-check.XXXXXX)
keep_run() {  # a training run's log files into logs/
  mkdir -p "$out/logs/$(basename "$1")"
  cp "$1"/metrics.jsonl "$1"/loss.svg "$out/logs/$(basename "$1")/" 2>/dev/null
}

case "$stage" in
proof)
  need_bundle
  step nvidia-smi 10 nvidia-smi
  test_step cuda-tests 75 35 "$bin/seemore_cuda_tests"
  step nccl-one-rank 30 "$bin/seemore_nccl_tests"
  step microbench 40 "$bin/seemore-microbench-cuda" --reps 20 --json "$out/logs/microbench.jsonl"
  step bench-cuda 30 "$bin/seemore-bench-cuda" --device cuda --steps 30 --warmup 5 --cuda-graph
  step bench-cpu 25 "$bin/seemore-bench" --steps 3 --warmup 1
  data=$bundle/data/inputs.csv
  recipe=(--preset seemore --repeat 30 --steps 100 --seed 0 --eval-interval 10 --eval-iters 10 --quiet)
  if [ ! -f "$data" ]; then  # no reference CSV carried: the synthetic scenes, same recipe
    "$bin/seemore-synth" --out "$work/synth" --count 120 --seed 1 > /dev/null 2>&1
    data=$work/synth/captions.jsonl
    recipe=(--preset seemore --vocab captions --steps 100 --seed 0 --eval-interval 10 --eval-iters 10 --quiet)
    notes+=("No reference CSV in the bundle: the 100-step runs used 120 synthetic scenes.")
  fi
  step train-cuda 40 "$bin/seemore-train-cuda" --device cuda --data "$data" "${recipe[@]}" --out "$work/train_cuda"
  keep_run "$work/train_cuda"
  step train-cpu 60 "$bin/seemore-train" --data "$data" "${recipe[@]}" --out "$work/train_cpu"
  keep_run "$work/train_cpu"
  # The two loss curves side by side, every 10 steps.
  curve() { grep -v '"eval"' "$1/metrics.jsonl" 2>/dev/null | sed -n 's/.*"loss":\([0-9.e+-]*\).*"step":\([0-9]*\).*/\2 \1/p'; }
  if [ -f "$out/logs/train_cuda/metrics.jsonl" ] && [ -f "$out/logs/train_cpu/metrics.jsonl" ]; then
    notes+=("## Loss, 100 steps of the reference recipe: GPU and CPU (same seed, same batches, same dropout masks)" ""
            "| step | GPU | CPU |" "|---|---|---|")
    while read -r s g _ c; do
      if [ $((s % 10)) = 0 ] || [ "$s" = 99 ]; then notes+=("| $s | $g | $c |"); fi
    done < <(paste -d' ' <(curve "$out/logs/train_cuda") <(curve "$out/logs/train_cpu"))
    write_summary
  fi
  step caption 15 "$bin/seemore-caption-cuda" --device cuda --checkpoint "$work/train_cuda/model.safetensors" \
    --eval "$data" --examples 1
  notes+=("## Training step (seemore-bench)" '```' "$(grep -hE 'training step|CUDA graph|samples|GFLOP|memory' "$out/logs/bench-cuda.log" "$out/logs/bench-cpu.log" 2>/dev/null | head -12)" '```')
  write_summary
  ;;
sanitize)
  need_bundle
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  # Every kernel runs in these tests; the caching allocator is bypassed so that
  # an overrun past a tensor's end is outside its allocation.
  quick=round_trip,elementwise,dropout_same_mask,layout,rows,adam,attention_small,training_step,generate
  SEEMORE_CUDA_NO_CACHE=1 step memcheck 150 "$san" --tool memcheck --error-exitcode 3 "$bin/seemore_cuda_tests" "$quick"
  step racecheck 120 "$san" --tool racecheck --error-exitcode 3 "$bin/seemore_cuda_tests" attention_small,rows
  SEEMORE_CUDA_NO_CACHE=1 step initcheck 120 "$san" --tool initcheck --error-exitcode 3 "$bin/seemore_cuda_tests" "$quick"
  step synccheck 90 "$san" --tool synccheck --error-exitcode 3 "$bin/seemore_cuda_tests" attention_small,rows
  ;;
compare)
  need_bundle
  [ -f "$out/logs/microbench.jsonl" ] ||
    step microbench 40 "$bin/seemore-microbench-cuda" --reps 20 --json "$out/logs/microbench.jsonl"
  step side-by-side 240 python3 benchmarks/side_by_side.py --bench "$bin/seemore-bench-cuda" --device cuda --steps 20 \
    --compile --json "$out/logs/side_by_side.json"
  step sdpa 90 python3 benchmarks/attention_sdpa.py --micro "$out/logs/microbench.jsonl" --json "$out/logs/sdpa.json"
  notes+=("## PyTorch on the same card" '```' "$(tail -15 "$out/logs/side-by-side.log" 2>/dev/null)" "" "$(cat "$out/logs/sdpa.log" 2>/dev/null)" '```')
  write_summary
  ;;
build)
  deps=$root/.gpu-deps/usr
  prefix=()
  [ -d "$deps" ] && prefix=(-DCMAKE_PREFIX_PATH="$deps" -DCMAKE_INCLUDE_PATH="$deps/include")
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
  step configure 120 cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSEEMORE_CUDA=ON -DSEEMORE_MPI=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="${cap:-90}" -DCMAKE_CUDA_FLAGS=-Xptxas=-v "${prefix[@]}" || exit 1
  targets=(seemore_cuda_tests seemore_nccl_tests seemore-microbench-cuda seemore-bench-cuda seemore-train-cuda
           seemore-caption-cuda seemore-bench seemore-train seemore-synth seemore-caption)
  step build 480 cmake --build build-gpu --parallel "$(nproc)" $(printf -- '--target %s ' "${targets[@]}")
  mkdir -p "$bin" "$bundle/lib"
  for t in "${targets[@]}"; do f=$(find build-gpu -type f -name "$t" -perm -u+x | head -1); [ -n "$f" ] && cp "$f" "$bin/"; done
  grep -E "ptxas info *: (Compiling|Function properties|Used)|spill" "$out/logs/build.log" > "$out/logs/ptxas.log"
  ;;
*)
  echo "unknown stage '$stage' (proof, sanitize, compare or build)" >&2
  exit 2
  ;;
esac
rm -rf "$work"
[ -f "$bundle/ptxas.log" ] && cp "$bundle/ptxas.log" "$out/logs/ptxas.log"
notes+=("total: $(( $(date +%s) - start )) s; $failed step(s) failed")
write_summary
cat "$summary"
[ "$failed" = 0 ]
