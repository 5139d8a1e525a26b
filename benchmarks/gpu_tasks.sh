#!/usr/bin/env bash
# The sentiment task on a GPU machine with only jax/torch (no TensorFlow):
# default config, then --mixed-precision; metrics and logs go to $OUT/tasks/.
#   KERAS_BACKEND=jax OUT=/tmp/out bash benchmarks/gpu_tasks.sh [extra task flags]
# A failed run is recorded in $OUT/tasks/failures.txt; the other still runs.
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT/tasks"
RUNS=$(mktemp -d)
for variant in float32 mixed; do
  flags=()
  [ "$variant" = mixed ] && flags=(--mixed-precision)
  start=$(date +%s)
  if python -m tasks.sentiment "${flags[@]}" "$@" --runs-dir "$RUNS/$variant" \
      --export-dir= --verbose 2 > "$OUT/tasks/sentiment-$variant.log" 2>&1; then
    cp "$RUNS/$variant"/sentiment/*/metrics.json "$OUT/tasks/sentiment-$variant.json"
    cp "$RUNS/$variant"/sentiment/*/history.csv "$OUT/tasks/sentiment-$variant.csv"
  else
    echo "sentiment $variant failed (see its log)" >> "$OUT/tasks/failures.txt"
  fi
  echo "sentiment $variant: $(( $(date +%s) - start )) s wall, process included" \
    >> "$OUT/tasks/wall.txt"
done
