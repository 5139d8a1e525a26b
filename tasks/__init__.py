"""Runnable tasks built on keras_lstm: `python -m tasks.<name> --help`."""

import os

# TensorFlow's CPU allocator with its own pool (BFC) instead of malloc: the
# training engine's large intermediates (keras_lstm/fused/tf_bptt.py) then
# reuse memory from step to step instead of faulting in fresh pages. Char-gen
# training 1723 ms per batch against 1990 with the default allocator on a Zen
# 3 (benchmarks/NOTES.md, section 24). Read when TensorFlow first allocates;
# set TF_CPU_ALLOCATOR_USE_BFC=false to keep the default.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
