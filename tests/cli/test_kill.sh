#!/usr/bin/env bash
# Checkpoints survive SIGKILL: the trainer is killed at different moments
# (often while it writes a checkpoint: it writes one every step here); after
# each kill the checkpoint on disk must load, and resuming from it must end
# with exactly the checkpoint of an uninterrupted run.
# Usage: test_kill.sh BUILD_EXAMPLES_DIR WORK_DIR
set -u
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=1
cat > tiny.json <<'J'
{"preset": "standard", "img_size": 32, "patch_size": 8, "image_embed_dim": 32, "num_blks": 1,
 "n_embd": 32, "n_layer": 2, "n_head": 2, "dropout": 0.1, "block_size": 64}
J
"$bin/seemore-synth" --out data --count 24 --size 32 --seed 4 >/dev/null || exit 1
steps=400
train() { "$bin/seemore-train" --data data/captions.jsonl --config tiny.json --batch-size 4 --eval-interval 1 \
            --eval-iters 1 --seed 2 --steps $steps --quiet "$@"; }
train --out ref >/dev/null 2>&1 || { echo "FAIL uninterrupted run"; exit 1; }

fail=0
kills=0
for delay in 0.15 0.3 0.45 0.6 0.75 0.9 1.05 1.2; do
  # The binary itself in the background (not a function: its subshell would take the kill instead).
  "$bin/seemore-train" --data data/captions.jsonl --config tiny.json --batch-size 4 --eval-interval 1 \
    --eval-iters 1 --seed 2 --steps $steps --quiet --out killed --resume >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
  if [ -f killed/model.safetensors ]; then
    if ! "$bin/seemore-caption" --checkpoint killed/model.safetensors --image data/000000.png --score "a red circle" >/dev/null 2>&1; then
      echo "FAIL after a kill at ${delay}s the checkpoint does not load"; fail=$((fail + 1))
    fi
  fi
done
train --out killed --resume >/dev/null 2>&1 || { echo "FAIL final resume"; fail=$((fail + 1)); }
if cmp -s ref/model.safetensors killed/model.safetensors && cmp -s ref/train_state.safetensors killed/train_state.safetensors; then
  echo "ok   $kills kills, each left a loadable checkpoint; the resumed run ends bit-identical to the uninterrupted one"
else
  echo "FAIL the resumed run differs from the uninterrupted one"; fail=$((fail + 1))
fi
# A write cut by a kill leaves NAME.tmp.<pid>; the next run removes those of dead processes.
if ls killed/*.tmp.* >/dev/null 2>&1; then
  echo "FAIL temp files of killed writers are left after the final run:" killed/*.tmp.*; fail=$((fail + 1))
else
  echo "ok   no temp file of a killed writer is left after the final run"
fi
echo "$((1 - (fail > 0))) passed, $((fail > 0)) failed"
[ "$fail" = 0 ]
