"""Compile the Pallas LSTM kernels to PTX for an H100/H200 (sm_90a) on a CPU, and
report what the card would need: shared memory, registers, spills.

No GPU needed. Pallas lowers `keras_lstm.fused.jax_pallas`'s kernels to Triton IR
(as `tests/layers/test_pallas.py` checks), the jax CUDA plugin's Triton compiler
turns that into PTX, and NVIDIA's `ptxas -v` reports registers and spills. A kernel
whose shared memory exceeds 227 KiB per block (`SMEM_LIMIT`, sm_90) cannot launch
("launches: no"); one that spills registers runs partly from local memory.
Setup, into a side folder (the plugin must match the installed jax):

    v=$(python -c 'import jax; print(jax.__version__)')
    pip install --no-deps --target /tmp/cudaplug "jax-cuda12-plugin==$v" \\
        "jax-cuda12-pjrt==$v" nvidia-cuda-nvcc-cu12
    PYTHONPATH=/tmp/cudaplug JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1 KERAS_BACKEND=jax \\
        python benchmarks/pallas_ptx.py \\
        --ptxas /tmp/cudaplug/nvidia/cuda_nvcc/bin/ptxas

It captures the Triton module through a private jax function
(`lower_jaxpr_to_triton_module`), so it may need adapting to a later jax.
Writes `results/pallas-ptx-sm90.{json,md}`. NOTES.md section 16 has the outcome.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import export
from jax._src.lib import triton
from jax._src.pallas.triton import pallas_call_registration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keras_lstm.fused import jax_pallas  # noqa: E402

SMEM_LIMIT = 227 * 1024  # bytes of shared memory one block may use on sm_90
# (batch, timesteps, features, units): the DESIGN.md shapes the engine can take,
# then a sweep over units at one shape.
SHAPES = {
    "imdb": (64, 200, 128, 64),
    "weather": (256, 120, 14, 32),
    **{f"units {u}": (64, 50, 32, u) for u in (16, 32, 64, 128)},
}
TRITON = "__gpu$xla.gpu.triton"
# jax.default_matmul_precision settings: the default (TF32 dots on sm_90) and
# full float32.
PRECISIONS = {None: "default (TF32)", "float32": "float32"}


def triton_modules(batch, steps, features, units, precision):
    """The bytecode of the forward and backward kernels' Triton modules, their
    dots at jax's default matmul `precision` (None: TF32 on these cards)."""
    captured = []
    lowering = pallas_call_registration.lowering
    real = lowering.lower_jaxpr_to_triton_module

    def capture(*args, **kwargs):
        result = real(*args, **kwargs)
        buffer = io.BytesIO()
        result.module.operation.write_bytecode(buffer)
        captured.append(buffer.getvalue())
        return result

    shapes = [
        (batch, steps, features),
        (batch, units),
        (batch, units),
        (features, 4 * units),
        (units, 4 * units),
        (4 * units,),
    ]
    rng = np.random.default_rng(0)
    args = [0.1 * rng.standard_normal(s).astype("float32") for s in shapes]

    def loss(*args):
        outputs, h, c = jax_pallas.lstm_sequence(*args, interpret=False)
        return jnp.sum(outputs) + jnp.sum(h) + jnp.sum(c)

    lowering.lower_jaxpr_to_triton_module = capture
    try:
        with jax.default_matmul_precision(precision):
            export.export(
                jax.jit(jax.grad(loss, argnums=tuple(range(6)))),
                platforms=["cuda"],
                disabled_checks=[export.DisabledSafetyCheck.custom_call(TRITON)],
            )(*args)
    finally:
        lowering.lower_jaxpr_to_triton_module = real
    return dict(zip(["forward", "backward"], captured, strict=True))


def ptxas_report(ptxas, ptx):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kernel.ptx"
        path.write_text(ptx)
        run = subprocess.run(
            [ptxas, "-arch=sm_90a", "-v", str(path), "-o", "/dev/null"],
            capture_output=True,
            text=True,
        )
    if run.returncode:
        raise RuntimeError(f"ptxas failed: {run.stderr}")

    def number(pattern):
        return int(re.search(pattern, run.stderr).group(1))

    return {
        "registers": number(r"Used (\d+) registers"),
        "spill_stores": number(r"(\d+) bytes spill stores"),
        "spill_loads": number(r"(\d+) bytes spill loads"),
        "stack_frame": number(r"(\d+) bytes stack frame"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptxas", required=True, help="path to NVIDIA's ptxas")
    parser.add_argument("--num-warps", type=int, default=4)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    jax.devices()  # initializes the backends: the CUDA plugin registers its compiler
    if not triton.has_compilation_handler("CUDA"):
        sys.exit("no Triton compiler for CUDA: install jax-cuda12-plugin (see --help)")

    rows = []
    for (name, shape), precision in itertools.product(SHAPES.items(), PRECISIONS):
        units = shape[-1]
        if precision and units > jax_pallas.MAX_UNITS:
            continue  # full float32 dots at 128 units: ptxas ran over 10 minutes
        for kind, module in triton_modules(*shape, precision).items():
            compiled = triton.compile(
                "CUDA",
                module,
                "9.0",
                num_warps=args.num_warps,
                num_ctas=1,
                num_stages=1,
            )
            row = {
                "shape": name,
                "batch, steps, features, units": shape,
                "kernel": kind,
                "dots": PRECISIONS[precision],
                "tensor_cores": "mma.sync" in compiled.asm,
                "shared_memory": compiled.smem_bytes,
                **ptxas_report(args.ptxas, compiled.asm),
                "engine_takes_it": jax_pallas.supports(units),
            }
            row["launches"] = row["shared_memory"] <= SMEM_LIMIT
            rows.append(row)
            print(json.dumps(row), flush=True)

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jax": jax.__version__,
        "target": "sm_90a",
        "num_warps": args.num_warps,
        "shared_memory_limit": SMEM_LIMIT,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pallas-ptx-sm90.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"{result['date']} · jax {jax.__version__} · Triton → PTX for sm_90a "
        f"(H100/H200), {args.num_warps} warps, no GPU · shared memory limit "
        f"{SMEM_LIMIT} bytes per block",
        "",
        "| shape (batch, steps, features, units) | kernel | dots | tensor cores "
        "| shared memory (bytes) | registers | spill stores / loads (bytes) | launches "
        "| engine takes it |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} {tuple(r['batch, steps, features, units'])} "
            f"| {r['kernel']} | {r['dots']} | {'yes' if r['tensor_cores'] else 'no'} "
            f"| {r['shared_memory']} | {r['registers']} "
            f"| {r['spill_stores']} / {r['spill_loads']} "
            f"| {'yes' if r['launches'] else '**no**'} "
            f"| {'yes' if r['engine_takes_it'] else 'no'} |"
        )
    lines += [
        "",
        "Command: `PYTHONPATH=/tmp/cudaplug JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1 "
        "KERAS_BACKEND=jax python benchmarks/pallas_ptx.py --ptxas "
        "/tmp/cudaplug/nvidia/cuda_nvcc/bin/ptxas` (setup in the script's docstring)",
    ]
    (out / "pallas-ptx-sm90.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
