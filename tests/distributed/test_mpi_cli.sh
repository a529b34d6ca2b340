#!/usr/bin/env bash
# seemore-train over MPI ranks, end to end: N ranks train exactly what one
# process accumulating N micro-batches trains, a run moves between rank
# counts on resume, a lost or stuck rank stops the run (never a hang), and
# ranks launched with other flags or data are refused before step 1.
# Usage: test_mpi_cli.sh BUILD_EXAMPLES_DIR WORK_DIR [MPIEXEC]
set -u
bin=$1
work=$2
mpiexec=${3:-mpirun}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
pass=0
fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# The tiny model of test_cli.sh, dropout on: masks must follow the samples across ranks.
cat > tiny.json <<'J'
{"preset": "standard", "img_size": 32, "patch_size": 8, "image_embed_dim": 32, "num_blks": 1,
 "n_embd": 32, "n_layer": 2, "n_head": 2, "dropout": 0.1, "block_size": 64}
J
"$bin/seemore-synth" --out data --count 48 --size 48 --seed 3 >/dev/null || { echo "synth failed"; exit 1; }
base=(--data data/captions.jsonl --config tiny.json --eval-iters 4 --seed 5 --quiet)
common=("${base[@]}" --batch-size 16 --eval-interval 5)
long=("${base[@]}" --batch-size 16 --eval-interval 20 --steps 1000000)
train() { "$bin/seemore-train" "${common[@]}" "$@"; }
ranks() { local n=$1; shift; "$mpiexec" -np "$n" "$bin/seemore-train" "${common[@]}" "$@"; }
losses() { grep -v '"eval"' "$1/metrics.jsonl" | sed 's/"elapsed_s":[^,}]*,//'; }
same_run() {  # name dirA dirB: checkpoint, training state and per-step losses byte-identical
  if cmp -s "$2/model.safetensors" "$3/model.safetensors" && cmp -s "$2/train_state.safetensors" "$3/train_state.safetensors" &&
     [ "$(losses "$2")" = "$(losses "$3")" ] && [ "$(losses "$2" | wc -l)" -ge 10 ]; then
    ok "$1"
  else
    bad "$1"; diff <(losses "$2") <(losses "$3") | head -6
  fi
}

# ---- 2 ranks == one process with --grad-accum 2, global batch 16
train --steps 10 --grad-accum 2 --out accum2 >/dev/null 2>&1 || bad "train --grad-accum 2"
ranks 2 --steps 10 --out np2 > np2.log 2>&1 || { bad "mpirun -np 2: $(tail -3 np2.log)"; }
same_run "2 ranks: losses and checkpoint byte-identical to --grad-accum 2" accum2 np2
grep -q "2 ranks x 1 micro-batch" np2.log && ok "2 ranks: rank 0 reports the split" || bad "no split line: $(head -3 np2.log)"
[ "$(grep -c '^model:' np2.log)" = 1 ] && ok "2 ranks: only rank 0 prints" || bad "other ranks print: $(cat np2.log)"

# ---- --ranks N: the same run, started by seemore-train itself under mpirun
env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM "$bin/seemore-train" "${common[@]}" --steps 10 \
  --out byflag --ranks 2 >/dev/null 2>&1 || bad "--ranks 2"
same_run "--ranks 2 == mpirun -np 2" np2 byflag
msg=$(PATH=/nonexistent "$bin/seemore-train" "${common[@]}" --steps 10 --out nompi --ranks 2 2>&1)
[ $? -ne 0 ] && echo "$msg" | grep -q "mpirun is not on the PATH" && ok "--ranks without mpirun: '$msg'" || bad "--ranks without mpirun: $msg"

# ---- 4 ranks on 2 cores, several buckets: == --grad-accum 4, and within float rounding of one batch
train --steps 10 --grad-accum 4 --out accum4 >/dev/null 2>&1 || bad "train --grad-accum 4"
train --steps 10 --out accum1 >/dev/null 2>&1 || bad "train, one batch"
ranks 4 --steps 10 --out np4 --bucket-mib 0.03 > np4.log 2>&1 || bad "mpirun -np 4: $(tail -3 np4.log)"
grep -Eq "buckets of gradients" np4.log && ok "4 ranks: several buckets ($(grep -o '[0-9]* buckets' np4.log))" || bad "buckets: $(head -3 np4.log)"
same_run "4 ranks: byte-identical to --grad-accum 4 (parameters equal on every rank: checked at each evaluation)" accum4 np4
ranks 4 --steps 10 --out np4b --bucket-mib 0.03 --no-overlap > /dev/null 2>&1 || bad "mpirun -np 4 --no-overlap"
same_run "4 ranks: summing during or after the backward gives the same bits" np4 np4b
# Tolerance against the whole batch in one piece: 1e-5 relative per step (fp32
# sums in another order; observed ≈2e-7 over these 10 steps).
if paste <(losses accum1 | sed 's/.*"loss":\([^,]*\).*/\1/') <(losses np4 | sed 's/.*"loss":\([^,]*\).*/\1/') |
   awk 'BEGIN { bad = 0; n = 0 } { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) bad = 1 } END { exit bad || n < 10 }'; then
  ok "4 ranks: per-step losses within 1e-5 (relative) of the unsplit batch"
else
  bad "4 ranks vs the unsplit batch"; paste <(losses accum1) <(losses np4) | head -3
fi

# ---- resume on another number of ranks: 5 steps on 2 ranks, then 1 process --grad-accum 2; and back
ranks 2 --steps 5 --out moved >/dev/null 2>&1 || bad "2 ranks, 5 steps"
train --steps 10 --grad-accum 2 --out moved --resume >/dev/null 2>&1 || bad "resume in one process"
same_run "resume: 2 ranks then 1 process (--grad-accum 2) == uninterrupted" np2 moved
train --steps 5 --grad-accum 2 --out back >/dev/null 2>&1 || bad "1 process, 5 steps"
ranks 2 --steps 10 --out back --resume >/dev/null 2>&1 || bad "resume on 2 ranks"
same_run "resume: 1 process then 2 ranks == uninterrupted" np2 back

# ---- a rank SIGKILLed mid-run: the others stop within 60 s, the lost rank is named, the checkpoint loads
rank_pid() {  # out-dir rank: the pid of that rank of the run writing to out-dir
  local p
  for p in $(pgrep -f "seemore-train.*--out $1( |$)"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
"$mpiexec" -np 2 "$bin/seemore-train" "${long[@]}" --out killed > killed.log 2>&1 &
launcher=$!
for _ in $(seq 1 300); do [ -s killed/model.safetensors ] && break; sleep 0.1; done
sleep 0.5
victim=$(rank_pid killed 1)
if [ -n "$victim" ]; then
  kill -9 "$victim"
  t0=$(date +%s)
  for _ in $(seq 1 600); do kill -0 $launcher 2>/dev/null || break; sleep 0.1; done
  took=$(( $(date +%s) - t0 ))
  if kill -0 $launcher 2>/dev/null; then
    bad "SIGKILL: the run still runs 60 s after rank 1 was killed"; pkill -9 -f "seemore-train.*--out killed"
  else
    ok "SIGKILL: the run stopped ${took} s after rank 1 was killed"
  fi
  wait $launcher
  rc=$?
  [ $rc -ne 0 ] && grep -q "rank 1 .*signal 9" killed.log && ok "SIGKILL: exit $rc, the lost rank named ('$(grep -o 'process rank 1.*' killed.log | head -1)')" ||
    bad "SIGKILL: exit $rc: $(tail -4 killed.log)"
  "$bin/seemore-caption" --checkpoint killed/model.safetensors --image data/000000.png --score "one big red circle" \
    > score.log 2>&1 && ok "SIGKILL: the last checkpoint loads ($(tail -1 score.log))" || bad "SIGKILL: checkpoint: $(tail -2 score.log)"
else
  bad "SIGKILL: rank 1 not found"; pkill -9 -f "seemore-train.*--out killed"; wait $launcher
fi

# ---- a rank that stops answering (SIGSTOP): the others time out, name it and end the run
"$mpiexec" -np 3 "$bin/seemore-train" "${long[@]}" --out stuck --collective-timeout 5 > stuck.log 2>&1 &
launcher=$!
for _ in $(seq 1 300); do [ -s stuck/model.safetensors ] && break; sleep 0.1; done
victim=$(rank_pid stuck 2)
if [ -n "$victim" ]; then
  kill -STOP "$victim"
  for _ in $(seq 1 600); do kill -0 $launcher 2>/dev/null || break; sleep 0.1; done
  if kill -0 $launcher 2>/dev/null; then
    bad "SIGSTOP: the run still waits 60 s later"; pkill -9 -f "seemore-train.*--out stuck"
  fi
  wait $launcher
  rc=$?
  [ $rc -ne 0 ] && grep -q "did not finish in 5 s; no answer from rank 2 (lost or stuck)" stuck.log &&
    ok "SIGSTOP: the ranks waited 5 s, named rank 2 and ended the run (exit $rc)" || bad "SIGSTOP: exit $rc: $(tail -5 stuck.log)"
  kill -9 "$victim" 2>/dev/null
else
  bad "SIGSTOP: rank 2 not found"; pkill -9 -f "seemore-train.*--out stuck"; wait $launcher
fi

# ---- ranks that would train different things are refused before step 1
expect_refused() {  # name pattern out-dir mpiexec-args...
  local name=$1 pat=$2 out=$3
  shift 3
  "$mpiexec" "$@" > refused.log 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pat" refused.log && [ ! -e "$out/model.safetensors" ] &&
     [ "$(grep -c 'seemore-train:' refused.log)" = 1 ]; then
    ok "$name: '$(grep 'seemore-train:' refused.log)'"
  else
    bad "$name (exit $rc): $(grep -v '^---\|^$' refused.log | head -4)"
  fi
}
expect_refused "other flags" "rank 1 and rank 0 disagree on --lr" mm1 \
  -np 1 "$bin/seemore-train" "${common[@]}" --steps 3 --out mm1 : -np 1 "$bin/seemore-train" "${common[@]}" --steps 3 --out mm1 --lr 0.002
"$bin/seemore-synth" --out data2 --count 48 --size 48 --seed 4 >/dev/null
other=(--data data2/captions.jsonl --config tiny.json --batch-size 16 --eval-interval 5 --eval-iters 4 --seed 5 --quiet)
expect_refused "other data" "rank 1 and rank 0 disagree on the training data" mm2 \
  -np 1 "$bin/seemore-train" "${common[@]}" --steps 3 --out mm2 : -np 1 "$bin/seemore-train" "${other[@]}" --steps 3 --out mm2
missing=(--data nowhere/captions.jsonl --config tiny.json --batch-size 16 --quiet)
expect_refused "data missing on one rank" "rank 1: nowhere/captions.jsonl" mm3 \
  -np 1 "$bin/seemore-train" "${common[@]}" --steps 3 --out mm3 : -np 1 "$bin/seemore-train" "${missing[@]}" --steps 3 --out mm3
expect_refused "a batch too small for the ranks" "cannot be cut into 6 micro-batches" mm4 \
  -np 3 "$bin/seemore-train" "${base[@]}" --steps 3 --out mm4 --batch-size 4 --grad-accum 2

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
