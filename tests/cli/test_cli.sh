#!/usr/bin/env bash
# End-to-end tests of seemore-synth, seemore-train and seemore-caption:
# resume is bit-identical, and every kind of bad input gives one clear line,
# a non-zero exit, and leaves an existing checkpoint untouched.
# Usage: test_cli.sh BUILD_EXAMPLES_DIR WORK_DIR
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=2
pass=0
fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# A tiny standard-preset model with dropout, so the resume check covers the dropout generator.
cat > tiny.json <<'J'
{"preset": "standard", "img_size": 32, "patch_size": 8, "image_embed_dim": 32, "num_blks": 1,
 "n_embd": 32, "n_layer": 2, "n_head": 2, "dropout": 0.1, "block_size": 64}
J
"$bin/seemore-synth" --out data --count 24 --size 48 --seed 3 >/dev/null || { echo "synth failed"; exit 1; }
train() { "$bin/seemore-train" --data data/captions.jsonl --config tiny.json --batch-size 4 --eval-interval 2 \
            --eval-iters 2 --seed 5 --quiet "$@"; }

# ---- resume: 6 steps at once == 4 steps, stop, resume to 6
train --steps 6 --out full > full.log 2>&1 || bad "train 6 steps"
train --steps 4 --out part > /dev/null 2>&1 || bad "train 4 steps"
train --steps 6 --out part --resume > part.log 2>&1 || bad "resume to 6 steps"
if cmp -s full/model.safetensors part/model.safetensors && cmp -s full/train_state.safetensors part/train_state.safetensors; then
  ok "resume: final weights and optimizer state are bit-identical"
else
  bad "resume: final weights differ"
fi
losses() { grep -v '"eval"' "$1" | sed 's/"elapsed_s":[^,}]*,//'; }
if [ "$(losses full/metrics.jsonl)" = "$(losses part/metrics.jsonl)" ] && [ "$(losses full/metrics.jsonl | wc -l)" = 6 ]; then
  ok "resume: the same 6 per-step losses"
else
  bad "resume: losses differ"; diff <(losses full/metrics.jsonl) <(losses part/metrics.jsonl)
fi
# ---- the same with the library's training utilities: AdamW on weight-decay groups, warmup, clipping
# (a constant rate after the warmup: a cosine's rates depend on --steps, which the stopped run changes)
u=(--optimizer adamw --weight-decay 0.1 --decay weights --warmup 3 --clip-grad-norm 0.05)
train --steps 6 --out ufull "${u[@]}" > /dev/null 2>&1 || bad "train 6 steps with clipping and a schedule"
train --steps 4 --out upart "${u[@]}" > /dev/null 2>&1 || bad "train 4 steps with clipping and a schedule"
train --steps 6 --out upart --resume "${u[@]}" > /dev/null 2>&1 || bad "resume with clipping and a schedule"
if cmp -s ufull/train_state.safetensors upart/train_state.safetensors && [ "$(losses ufull/metrics.jsonl)" = "$(losses upart/metrics.jsonl)" ]; then
  ok "resume with groups, schedule and clipping: bit-identical state and losses"
else
  bad "resume with groups, schedule and clipping differs"
fi
if [ "$(grep -c '"grad_norm"' ufull/metrics.jsonl)" = 6 ] && grep -q '"lr":0.001,' ufull/metrics.jsonl && grep -q '"lr":0.000333' ufull/metrics.jsonl && \
   ! cmp -s ufull/train_state.safetensors full/train_state.safetensors; then
  ok "clipping logs each step's grad_norm; the schedule reaches the peak rate"
else
  bad "metrics with clipping: $(head -n3 ufull/metrics.jsonl)"
fi
train --steps 6 --out bad_clip --clip-grad-norm -1 > bad_clip.log 2>&1
[ $? != 0 ] && grep -q -- "--clip-grad-norm must be >= 0" bad_clip.log && ok "a negative --clip-grad-norm is refused" ||
  bad "negative --clip-grad-norm: $(cat bad_clip.log)"

tail -n1 full.log | grep -Eq '^train_loss [0-9.]+ val_loss [0-9.na]+$' && ok "train prints train_loss/val_loss last" || bad "train last line: $(tail -n1 full.log)"
[ -s full/loss.svg ] && grep -q '<svg' full/loss.svg && ok "loss.svg written" || bad "loss.svg"

# ---- caption
out=$("$bin/seemore-caption" --checkpoint full/model.safetensors --image data/000000.png data/000001.png --greedy --max-tokens 20)
[ "$?" = 0 ] && [ "$(echo "$out" | wc -l)" = 2 ] && ok "caption: one line per image" || bad "caption: $out"
s=$("$bin/seemore-caption" --checkpoint full/model.safetensors --image data/000000.png --score "two red circles" | tail -n1)
echo "$s" | grep -Eq '^loss [0-9]+\.[0-9]+$' && ok "score: '$s'" || bad "score: $s"

# ---- a bare state dict written by the PyTorch reference: sizes from its tensors, seemore quirks by default
ref=$src/tests/reference/reference_tiny_seemore.safetensors
r1=$("$bin/seemore-caption" --checkpoint "$ref" --image data/000000.png --prompt A --greedy --max-tokens 8)
r2=$("$bin/seemore-caption" --checkpoint "$ref" --preset seemore --image data/000000.png --prompt A --greedy --max-tokens 8)
[ -n "$r1" ] && [ "$r1" = "$r2" ] && [ "${r1:0:1}" = A ] && ok "caption: bare reference state dict: '$r1'" ||
  bad "caption: bare reference state dict: '$r1' vs '$r2'"
r4=$("$bin/seemore-caption" --checkpoint "$src/tests/reference/reference_tiny_seemore.pt" --image data/000000.png --prompt A --greedy --max-tokens 8)
[ -n "$r1" ] && [ "$r4" = "$r1" ] && ok "caption: the same state dict written by torch.save" || bad "caption: torch.save file: '$r4' vs '$r1'"

# --init: a run that starts from it (0 steps) holds the same model; training from it goes on
# (short captions: the reference file's position table has 32 rows)
i=0
for c in a b c d e f g h; do printf '{"image": "00000%d.png", "caption": "shape %s"}\n' $i $c; i=$((i + 1)); done > data/short.jsonl
"$bin/seemore-train" --data data/short.jsonl --init "$ref" --batch-size 4 --steps 0 --eval-iters 1 --out init0 --quiet \
  > /dev/null 2>&1 || bad "train --init, 0 steps"
r3=$("$bin/seemore-caption" --checkpoint init0/model.safetensors --image data/000000.png --prompt A --greedy --max-tokens 8)
[ -n "$r1" ] && [ "$r3" = "$r1" ] && ok "train --init: the checkpoint it writes captions as the reference's" ||
  bad "train --init: '$r3' vs '$r1'"
"$bin/seemore-train" --data data/short.jsonl --init "$ref" --batch-size 4 --steps 2 --eval-iters 1 --out init2 --quiet \
  > init2.log 2>&1 && tail -n1 init2.log | grep -q '^train_loss' && ok "train --init: 2 steps from a PyTorch state dict" ||
  bad "train --init, 2 steps: $(tail -n2 init2.log)"

# ---- bad inputs: each must exit non-zero with a message naming the problem, checkpoint untouched
sum_before=$(md5sum full/model.safetensors full/train_state.safetensors)
expect_fail() {  # name, pattern, command...
  local name=$1 pat=$2
  shift 2
  local msg
  msg=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -ne 0 ] && echo "$msg" | grep -q -- "$pat" && [ "$(echo "$msg" | grep -c .)" -le 2 ]; then
    ok "$name: $(echo "$msg" | head -n1 | cut -c1-150)"
  else
    bad "$name (rc $rc): $msg"
  fi
}
tr_bad() { "$bin/seemore-train" --config tiny.json --batch-size 2 --steps 1 --quiet --out full "$@"; }
expect_fail "missing data file" "no such file" tr_bad --data nope.jsonl
expect_fail "directory as data" "is a directory" tr_bad --data data
printf '{"image": "nothere.png", "caption": "a red circle"}\n' > missing_img.jsonl
expect_fail "missing image" "nothere.png: no such file" tr_bad --data missing_img.jsonl
head -c 300 data/000000.png > data/trunc.png
printf '{"image": "trunc.png", "caption": "a red circle"}\n' > data/trunc.jsonl
expect_fail "truncated PNG" "trunc.png: corrupt or truncated PNG" tr_bad --data data/trunc.jsonl
echo "hello" > data/text.png
printf '{"image": "text.png", "caption": "a red circle"}\n' > data/text.jsonl
expect_fail "not an image" "text.png: not a PNG, JPEG, GIF, WebP, BMP, TIFF, PNM, SGI, PCX, ICO, CUR or TGA image" tr_bad --data data/text.jsonl
printf 'b64string_images,caption\n"iVBORw0K!!!",a red circle\n' > badb64.csv
expect_fail "invalid base64" "badb64.csv row 1.*invalid base64" tr_bad --data badb64.csv
printf 'image,text\nabc,def\n' > header.csv
expect_fail "CSV wrong header" "header must have columns" tr_bad --data header.csv
printf 'b64string_images,caption\n%s,a red circle,extra\n' "$(base64 -w0 data/000000.png)" > ragged.csv
expect_fail "CSV ragged row" "ragged.csv row 1.*3 fields, the header has 2" tr_bad --data ragged.csv
printf 'b64string_images,caption\n' > empty.csv
expect_fail "empty CSV dataset" "no data rows" tr_bad --data empty.csv
: > empty.jsonl
expect_fail "empty manifest" "no samples" tr_bad --data empty.jsonl
printf '{"image": "000000.png", "caption": "a red circle \\u00e9"}\n' > data/unicode.jsonl
expect_fail "unknown caption character" "unicode.jsonl line 1 caption: character" tr_bad --data data/unicode.jsonl
printf '{"image": "000000.png", "caption": 5}\n' > data/badfield.jsonl
expect_fail "manifest field type" "field 'caption' must be a string" tr_bad --data data/badfield.jsonl
expect_fail "image above the pixel cap" "exceeds the limit" tr_bad --data data/captions.jsonl --max-pixels 1000
# A PNG whose (valid, CRC-checked) header claims 0 x 0 pixels.
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x00\x00\x00\x00\x00\x08\x02\x00\x00\x00\xb4\xe9\xeb\x45' > data/zero.png
printf '{"image": "zero.png", "caption": "a red circle"}\n' > data/zero.jsonl
expect_fail "zero-sized image" "zero.png: image has zero size" tr_bad --data data/zero.jsonl
echo '{"n_embd": "big"}' > badtype.json
expect_fail "config wrong type" "badtype.json: field 'n_embd' must be an integer" \
  "$bin/seemore-train" --data data/captions.jsonl --config badtype.json --steps 1 --out full --quiet
echo '{"n_embd": 64' > badjson.json
expect_fail "config not JSON" "badjson.json: not valid JSON" \
  "$bin/seemore-train" --data data/captions.jsonl --config badjson.json --steps 1 --out full --quiet
echo '{"preset": "standard", "n_embd": 64}' > other.json
expect_fail "checkpoint shapes vs config" "has shape" \
  "$bin/seemore-caption" --checkpoint full/model.safetensors --config other.json --image data/000000.png
expect_fail "bare checkpoint vs preset vocabulary" "66-token embedding does not fit the standard preset's 67 tokens" \
  "$bin/seemore-caption" --checkpoint "$ref" --preset standard --image data/000000.png --prompt A
expect_fail "our checkpoint vs --preset" "of the standard preset, not the seemore preset asked for" \
  "$bin/seemore-caption" --checkpoint full/model.safetensors --preset seemore --image data/000000.png
expect_fail "train: --init with its own --vocab" "conflicts with --init" \
  "$bin/seemore-train" --data data/captions.jsonl --init "$ref" --vocab captions --steps 1 --out full --quiet
expect_fail "train: --init that does not exist" "nope.safetensors: no such file" \
  "$bin/seemore-train" --data data/captions.jsonl --init nope.safetensors --steps 1 --out full --quiet
expect_fail "missing checkpoint" "no such file" "$bin/seemore-caption" --checkpoint nope.safetensors --image data/000000.png
expect_fail "checkpoint is a directory" "is a directory" "$bin/seemore-caption" --checkpoint full --image data/000000.png
head -c 1000 full/model.safetensors > trunc.safetensors
expect_fail "truncated checkpoint" "truncated" "$bin/seemore-caption" --checkpoint trunc.safetensors --image data/000000.png
expect_fail "caption: bad image" "text.png: not a PNG, JPEG, GIF, WebP, BMP, TIFF, PNM, SGI, PCX, ICO, CUR or TGA image" "$bin/seemore-caption" --checkpoint full/model.safetensors --image data/text.png
expect_fail "score: unknown character" "character" "$bin/seemore-caption" --checkpoint full/model.safetensors --image data/000000.png --score "caf$(printf '\xc3\xa9')"
# cuda:7 exists nowhere we run: a CPU build says it lacks CUDA, a CUDA build
# (through seemore-train-cuda) that the device does not exist or cannot be used.
expect_fail "train: unusable device" "cuda" \
  "$bin/seemore-train" --data data/captions.jsonl --config tiny.json --steps 1 --out full --quiet --device cuda:7
expect_fail "caption: unusable device" "cuda" \
  "$bin/seemore-caption" --checkpoint full/model.safetensors --image data/000000.png --device cuda:7
# SEEMORE_BLAS that cannot be used: named, with the library's problem, before any work.
expect_fail "train: SEEMORE_BLAS missing" "SEEMORE_BLAS: cannot load '/nonexistent/libblas.so'" \
  env SEEMORE_BLAS=/nonexistent/libblas.so "$bin/seemore-train" --data data/captions.jsonl --config tiny.json --steps 1 --out full --quiet
expect_fail "caption: SEEMORE_BLAS without sgemm_" "SEEMORE_BLAS: 'libm.so.6' has no sgemm_" \
  env SEEMORE_BLAS=libm.so.6 "$bin/seemore-caption" --checkpoint full/model.safetensors --image data/000000.png
sum_after=$(md5sum full/model.safetensors full/train_state.safetensors)
[ "$sum_before" = "$sum_after" ] && ok "existing checkpoint untouched by every failed run" || bad "checkpoint changed"
ls full/*.tmp.* >/dev/null 2>&1 && bad "temporary files left behind" || ok "no temporary files left behind"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
