"""Character-level text generation on Shakespeare (python -m tasks.text_generation)."""

import os

# TensorFlow's CPU allocator with its own pool (BFC) instead of malloc: the
# training engine's large intermediates at this task's 1024 units
# (keras_lstm/fused/tf_bptt.py) then reuse memory from step to step instead of
# faulting in fresh pages. Char-gen training 1723-1769 ms per batch against
# 1990 with the default allocator on a Zen 3; no gain at the sentiment and
# weather shapes, so only this task sets it (benchmarks/NOTES.md, section 24).
# Read when TensorFlow first allocates; TF_CPU_ALLOCATOR_USE_BFC=false keeps
# the default.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
