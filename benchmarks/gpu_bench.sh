#!/usr/bin/env bash
# GPU benchmark for issue 8, for a machine with Python 3.12 + JAX and torch with
# CUDA, and no TensorFlow or Keras installed (the lead installs the wheels that
# /work/shared/gpu/prepare_wheels.sh downloads). Budget: under 5 minutes on an
# H100; every step has its own timeout and a failed step does not stop the others.
#
#   export KERAS_BACKEND=jax PYTHONPATH=/tmp/site:$PWD OUT=/some/folder
#   bash benchmarks/gpu_bench.sh
#
# Writes into $OUT (10 files at most, no subfolders):
#   nvidia-smi.txt          the card (nvidia-smi --query-gpu=name ... --format=csv)
#   gpu_bench.log           everything printed, the gpu_check lines included
#   jax-gpu-lstm-gru-main.{json,md}
#                           LSTM and GRU, shapes imdb/chargen/weather, fit/predict
#                           over 20 batches, 5 repeats: ours as shipped (on a
#                           jax GPU: input projection hoisted), keras built-in
#                           (LSTM: cuDNN via jax.experimental.rnn), PyTorch
#                           nn.LSTM/nn.GRU (cuDNN), and "reference": our cell
#                           with use_cudnn=False and no hoisting
#   torch-gpu-lstm-gru.{json,md}
#                           torch backend: ours (torch._VF = cuDNN path), keras
#                           built-in, our reference cell (per-step Python), PyTorch
#   jax-gpu-lstm-pallas.{json,md}
#                           LSTM, imdb and weather: ours as shipped, ours with
#                           the opt-in Pallas kernels (KERAS_LSTM_PALLAS=1), PyTorch
#   jax-gpu-lstm-memory.{json,md}
#                           peak device memory per contender (if time is left)
#
# Test on a CPU: OUT=/tmp/gpuout KERAS_BACKEND=jax GPU_BENCH_QUICK=1 bash benchmarks/gpu_bench.sh
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
LOG="$OUT/gpu_bench.log"
: >"$LOG"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# Keep JAX from grabbing 75% of the card up front, so torch fits next to it and
# the memory figures mean something.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PY="${PYTHON:-python3}"

if [ "${GPU_BENCH_QUICK:-0}" = 1 ]; then
  SHAPES="weather"; REPEATS=1; BATCHES=2; TB=2; T_CHECK=300; T_MAIN=600; T_TORCH=300; T_PALLAS=600; END=9999
else
  # Worst case 40 + 130 + 35 + 60 + (285 - elapsed) s: under 5 minutes in all.
  SHAPES="imdb chargen weather"; REPEATS=5; BATCHES=20; TB=8; T_CHECK=40; T_MAIN=130; T_TORCH=35; T_PALLAS=60; END=285
fi

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, never abort the script
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s, at ${SECONDS}s) : $*" | tee -a "$LOG"
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "=== $name exit $rc after ${SECONDS}s" | tee -a "$LOG"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi failed"; } >"$OUT/nvidia-smi.txt" 2>&1
cat "$OUT/nvidia-smi.txt" | tee -a "$LOG"

# 1. Correctness on this device: fast path vs reference cell vs built-in.
step "check" "$T_CHECK" bash -c \
  "KERAS_BACKEND=jax $PY benchmarks/gpu_check.py; KERAS_BACKEND=torch $PY benchmarks/gpu_check.py"

# 2. The main table: jax backend, LSTM and GRU, three shapes (bench_layers.py
#    rewrites its files after each shape, so a timeout keeps what was done).
step "jax-main" "$T_MAIN" env KERAS_BACKEND=jax "$PY" benchmarks/bench_layers.py \
  --rnn lstm gru --shapes $SHAPES --contenders ours keras torch reference \
  --repeats "$REPEATS" --batches "$BATCHES" --tag main --out "$OUT"

# 3. torch backend: the fused path against the per-step reference loop.
step "torch-backend" "$T_TORCH" env KERAS_BACKEND=torch "$PY" benchmarks/bench_layers.py \
  --rnn lstm gru --shapes weather --contenders ours keras torch reference \
  --repeats 3 --batches "$TB" --out "$OUT"

# 4. The opt-in Pallas kernels against ours as shipped and PyTorch (LSTM only).
PALLAS_SHAPES="imdb weather"
[ "${GPU_BENCH_QUICK:-0}" = 1 ] && PALLAS_SHAPES="weather"
step "jax-pallas" "$T_PALLAS" env KERAS_BACKEND=jax "$PY" benchmarks/bench_layers.py \
  --rnn lstm --shapes $PALLAS_SHAPES --contenders ours pallas torch \
  --repeats "$REPEATS" --batches "$BATCHES" --tag pallas --out "$OUT"

# 5. Peak device memory (a fresh process per contender), while time is left.
if [ $((END - SECONDS)) -ge 30 ]; then
  step "jax-memory" $((END - SECONDS)) env KERAS_BACKEND=jax "$PY" benchmarks/bench_layers.py \
    --rnn lstm --shapes imdb --contenders ours keras torch --repeats 1 --batches 4 \
    --memory --tag memory --out "$OUT"
else
  echo "=== jax-memory skipped: ${SECONDS}s used" | tee -a "$LOG"
fi

echo "=== done in ${SECONDS}s; files in $OUT:" | tee -a "$LOG"
ls -la "$OUT" | tee -a "$LOG"
