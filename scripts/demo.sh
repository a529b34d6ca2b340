#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: installs what is missing, builds
# the tools, draws the synthetic dataset, trains a VLM on the CPU, captions
# held-out images, and writes a page of them with their true captions.
#
#   ./scripts/demo.sh            # everything lands in demo/
#   DEMO_STEPS=300 ./scripts/demo.sh   # a shorter run
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-demo}
steps=${DEMO_STEPS:-2000}
SEEMORE_TARGETS="seemore-synth seemore-train seemore-caption" scripts/build.sh
bin=build/examples

echo "== drawing the synthetic dataset (4000 training scenes of seed 1, 200 held-out of seed 2)"
"$bin/seemore-synth" --out "$out/data/train" --count 4000 --seed 1
"$bin/seemore-synth" --out "$out/data/test" --count 200 --seed 2   # another seed: never a training scene

echo "== training (examples/demo_config.json: the standard preset at 64x64 pixels, 1.4M parameters)"
"$bin/seemore-train" --data "$out/data/train/captions.jsonl" --config examples/demo_config.json \
  --steps "$steps" --batch-size 32 --lr 5e-4 --schedule cosine --warmup 100 \
  --eval-interval 250 --eval-iters 5 --val-fraction 0.02 --seed 0 --out "$out/run"

echo "== captioning the held-out images"
"$bin/seemore-caption" --checkpoint "$out/run/model.safetensors" --eval "$out/data/test/captions.jsonl" \
  --train "$out/data/train/captions.jsonl" --greedy --examples 8 --html "$out/captions.html"
echo "page: $out/captions.html   loss curve: $out/run/loss.svg   model: $out/run/model.safetensors"
