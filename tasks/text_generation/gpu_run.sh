#!/usr/bin/env bash
# The text generation task on a GPU machine with jax (no TensorFlow needed):
# 1. the default config, without the 30-minute time budget, to measure the
#    quality the default step count reaches (the CPU run measures the time);
# 2. the GPU configuration (2 x 1024 units, seq 200, batch 128, dropout 0.2),
#    capped at GPU_MINUTES of training.
# Metrics, histories and logs go to $OUT/.
#   KERAS_BACKEND=jax OUT=/tmp/out bash tasks/text_generation/gpu_run.sh
set -u
OUT=${OUT:-/tmp/gpu-out}
GPU_MINUTES=${GPU_MINUTES:-4}
mkdir -p "$OUT"
RUNS=$(mktemp -d)
run() {
  local name=$1
  shift
  local start
  start=$(date +%s)
  if python -m tasks.text_generation "$@" --runs-dir "$RUNS/$name" \
      --export-dir= --verbose 2 > "$OUT/$name.log" 2>&1; then
    cp "$RUNS/$name"/text_generation/*/metrics.json "$OUT/$name.json"
    cp "$RUNS/$name"/text_generation/*/history.csv "$OUT/$name.csv"
  else
    echo "$name failed (see its log)" >> "$OUT/failures.txt"
  fi
  echo "$name: $(( $(date +%s) - start )) s wall, process included" >> "$OUT/wall.txt"
}
run default --max-minutes 0
run gpu --units 1024 --layers 2 --dropout 0.2 --seq-length 200 --batch-size 128 \
  --steps-per-epoch 500 --epochs 20 --patience 4 --max-minutes "$GPU_MINUTES"
