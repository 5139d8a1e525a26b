"""jax backend, GPU, opt-in: a persistent LSTM kernel written with Pallas (Triton).

Issue 8 measured why a scan cannot catch cuDNN at small hidden sizes: every
timestep costs at least one kernel launch (about 10 us on an H100), more than the
step's arithmetic. This engine runs the whole sequence in one kernel per pass, the
way cuDNN does:

- forward: the input projection for all timesteps is one matmul outside the
  kernel (`x·W + b`); then each program owns a block of batch rows and loops over
  the timesteps with `h`, `c` and the recurrent kernel `U` held on chip, writing
  `h_t` and `C_t`.
- backward (`jax.custom_vjp`): one kernel loops back over the timesteps, recomputes
  the gates from the saved `h_{t-1}`, and writes the gate gradients `dz_t`; the
  weight gradients `dW`, `dU`, `db` and the input gradient are then four big
  matmuls/sums outside the kernel.

The keras.ops cell stays the reference: `tests/layers/test_pallas.py` runs these
kernels in Pallas' interpret mode on a CPU and compares outputs and gradients with
it, and checks that they lower to Triton for CUDA. Speed has not been measured yet
(no GPU in the sessions since it was written), so the engine is **off unless
`KERAS_LSTM_PALLAS=1`** is set; `benchmarks/gpu_bench.sh` times it as its own
contender. Engaged (when enabled) for: jax on a GPU, LSTM, no mask, no dropout,
tanh/sigmoid, float32, units a power of two from 16 to 64 (any batch: the rows
are padded to a multiple of 16 for the kernels). First-order reverse mode only:
a `jax.custom_vjp` whose backward is a kernel has no forward mode (`jax.jvp`)
and no gradient of its gradient; use `use_cudnn=False` for those.

Units stop at 64 because the kernels keep `U` in shared memory: compiled for an
H100/H200 (`benchmarks/pallas_ptx.py`, no GPU needed), 64 units take 72 KiB
(forward) and 136 KiB (backward) of the 227 KiB a block may use, with no register
spills; 128 units would take 272 and 528 KiB, which cannot launch. The kernels'
dots take jax's default matmul precision, as XLA's do (jnp.dot writes it into the
kernel's jaxpr): TF32 on such cards unless `jax.default_matmul_precision("float32")`
asks for full float32.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
from keras import ops

from keras_lstm.fused import default_activations

__all__ = ["select", "lstm_sequence", "enabled"]

BLOCK = 16  # batch rows per program; Triton's smallest matmul tile
MAX_UNITS = 64  # U on chip: 4·64·64 floats; see the module docstring


def enabled() -> bool:
    return os.environ.get("KERAS_LSTM_PALLAS", "") == "1"


def _on_gpu(x) -> bool:
    try:
        return {d.platform for d in x.devices()} == {"gpu"}
    except Exception:  # a tracer without devices: the default backend decides
        return jax.default_backend() == "gpu"


def supports(units: int) -> bool:
    """Units the kernels take: Triton tiles are powers of two, >= 16 (and `U`
    must fit on chip)."""
    return 16 <= units <= MAX_UNITS and units & (units - 1) == 0


def select(layer, sequences, mask, training):
    cell = layer.cell
    if not enabled() or hasattr(cell, "reset_after"):  # LSTM only
        return None
    if mask is not None or not default_activations(cell):
        return None
    if cell.compute_dtype != "float32" or cell.variable_dtype != "float32":
        return None
    if training and (cell.dropout or cell.recurrent_dropout):
        return None
    if sequences.shape[0] is None or not supports(cell.units):
        return None
    if not _on_gpu(sequences):
        return None

    def run(sequences, initial_state, mask):
        if layer.go_backwards:
            sequences = jnp.flip(sequences, axis=1)
        h0, c0 = (ops.convert_to_tensor(s) for s in initial_state)
        kernel, recurrent_kernel = (
            ops.convert_to_tensor(w) for w in (cell.kernel, cell.recurrent_kernel)
        )
        bias = (
            ops.convert_to_tensor(cell.bias)
            if cell.use_bias
            else jnp.zeros((4 * cell.units,), "float32")
        )
        outputs, h, c = lstm_sequence(sequences, h0, c0, kernel, recurrent_kernel, bias)
        last = outputs[:, -1]
        if not layer.return_sequences:
            outputs = last[:, None]
        return last, outputs, [h, c]

    return run


# The kernels --------------------------------------------------------------------
#
# Layouts: gates split out and time first, so that every load is one (rows, units)
# tile: projected inputs `xz` (T, 4, B, U), recurrent kernel `u` (4, U, U) with
# gate order i, f, C̃, o as in Keras.


def _gates(z_i, z_f, z_g, z_o):
    return jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g), jax.nn.sigmoid(z_o)


def _forward_kernel(xz_ref, u_ref, h0_ref, c0_ref, hs_ref, cs_ref):
    steps = xz_ref.shape[0]
    u = [u_ref[k] for k in range(4)]

    def step(t, carry):
        h, c = carry
        z = [xz_ref[t, k] + jnp.dot(h, u[k], preferred_element_type=jnp.float32)
             for k in range(4)]  # fmt: skip
        i, f, g, o = _gates(*z)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        hs_ref[t] = h
        cs_ref[t] = c
        return h, c

    jax.lax.fori_loop(0, steps, step, (h0_ref[...], c0_ref[...]))


def _backward_kernel(
    xz_ref, u_ref, h0_ref, c0_ref, hs_ref, cs_ref, dhs_ref, dcs_ref,
    dz_ref, dh0_ref, dc0_ref,
):  # fmt: skip
    steps = xz_ref.shape[0]
    u = [u_ref[k] for k in range(4)]
    h0, c0 = h0_ref[...], c0_ref[...]

    def step(s, carry):
        dh, dc = carry
        t = steps - 1 - s
        before = jnp.maximum(t - 1, 0)
        h_prev = jnp.where(t > 0, hs_ref[before], h0)
        c_prev = jnp.where(t > 0, cs_ref[before], c0)
        z = [xz_ref[t, k] + jnp.dot(h_prev, u[k], preferred_element_type=jnp.float32)
             for k in range(4)]  # fmt: skip
        i, f, g, o = _gates(*z)
        tanh_c = jnp.tanh(cs_ref[t])
        dh = dh + dhs_ref[t]
        dc = dc + dcs_ref[t] + dh * o * (1.0 - tanh_c * tanh_c)
        dz = (
            dc * g * i * (1.0 - i),
            dc * c_prev * f * (1.0 - f),
            dc * i * (1.0 - g * g),
            dh * tanh_c * o * (1.0 - o),
        )
        for k in range(4):
            dz_ref[t, k] = dz[k]
        # dh_{t-1} = sum_k dz_k · U_kᵀ: contract the units of dz with U's columns.
        dh = sum(
            jax.lax.dot_general(
                dz[k], u[k], (((1,), (1,)), ((), ())),
                preferred_element_type=jnp.float32,
            )
            for k in range(4)
        )  # fmt: skip
        return dh, dc * f

    zero = jnp.zeros_like(h0)
    dh, dc = jax.lax.fori_loop(0, steps, step, (zero, zero))
    dh0_ref[...] = dh
    dc0_ref[...] = dc


def _params(interpret: bool, num_warps: int = 4):
    if interpret:
        return None
    from jax.experimental.pallas import triton as plgpu

    return plgpu.CompilerParams(num_warps=num_warps, num_stages=1)


def _specs(steps, units, *kinds):
    """BlockSpecs per operand kind: 'seq' (T, B, U), 'gates' (T, 4, B, U),
    'rows' (B, U), 'weights' (4, U, U) shared by every program."""
    from jax.experimental import pallas as pl

    table = {
        "seq": pl.BlockSpec((steps, BLOCK, units), lambda b: (0, b, 0)),
        "gates": pl.BlockSpec((steps, 4, BLOCK, units), lambda b: (0, 0, b, 0)),
        "rows": pl.BlockSpec((BLOCK, units), lambda b: (b, 0)),
        "weights": pl.BlockSpec((4, units, units), lambda b: (0, 0, 0)),
    }
    return [table[k] for k in kinds]


def _forward(xz, u, h0, c0, interpret):
    steps, _, batch, units = xz.shape
    seq = jax.ShapeDtypeStruct((steps, batch, units), jnp.float32)
    from jax.experimental import pallas as pl

    return pl.pallas_call(
        _forward_kernel,
        out_shape=(seq, seq),
        grid=(batch // BLOCK,),
        in_specs=_specs(steps, units, "gates", "weights", "rows", "rows"),
        out_specs=_specs(steps, units, "seq", "seq"),
        interpret=interpret,
        compiler_params=_params(interpret),
        name="keras_lstm_forward",
    )(xz, u, h0, c0)


def _backward(xz, u, h0, c0, hs, cs, dhs, dcs, interpret):
    steps, _, batch, units = xz.shape
    rows = jax.ShapeDtypeStruct((batch, units), jnp.float32)
    from jax.experimental import pallas as pl

    return pl.pallas_call(
        _backward_kernel,
        out_shape=(jax.ShapeDtypeStruct(xz.shape, jnp.float32), rows, rows),
        grid=(batch // BLOCK,),
        in_specs=_specs(steps, units, "gates", "weights", *["rows"] * 2, *["seq"] * 4),
        out_specs=_specs(steps, units, "gates", "rows", "rows"),
        interpret=interpret,
        compiler_params=_params(interpret),
        name="keras_lstm_backward",
    )(xz, u, h0, c0, hs, cs, dhs, dcs)


def _split(weight, units):
    """(rows, 4·units) -> (4, rows, units), one block per gate."""
    return jnp.moveaxis(weight.reshape(weight.shape[0], 4, units), 1, 0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _recurrence(xz, u, h0, c0, interpret):
    """h_t, C_t for all t from the projected inputs `xz` (T, 4, B, U)."""
    return _forward(xz, u, h0, c0, interpret)


def _recurrence_fwd(xz, u, h0, c0, interpret):
    hs, cs = _forward(xz, u, h0, c0, interpret)
    return (hs, cs), (xz, u, h0, c0, hs, cs)


def _recurrence_bwd(interpret, saved, grads):
    xz, u, h0, c0, hs, cs = saved
    dhs, dcs = grads
    dz, dh0, dc0 = _backward(xz, u, h0, c0, hs, cs, dhs, dcs, interpret)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)  # (T, B, U)
    du = jnp.einsum("tbu,tkbv->kuv", h_prev, dz)  # one matmul over all (t, b)
    return dz, du, dh0, dc0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


@functools.partial(jax.jit, inline=True, static_argnames="interpret")
def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias, interpret=None):
    """The LSTM over `x` (B, T, F) with Keras' weights; (outputs, h_T, C_T).

    Equal to `keras_lstm.LSTM` (and `keras.layers.LSTM`) with tanh/sigmoid and no
    mask; differentiable in every argument. `interpret`: run the kernels in
    Pallas' interpreter (default: unless the default backend is a GPU); False
    compiles them with Triton, which is what a CUDA lowering needs.
    """
    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    units = recurrent_kernel.shape[0]
    batch = x.shape[0]
    xz = jnp.einsum("btf,fg->tbg", x, kernel) + bias  # one matmul, all timesteps
    xz = jnp.moveaxis(xz.reshape(*xz.shape[:2], 4, units), 2, 1)  # (T, 4, B, U)
    # Each program owns BLOCK rows: pad the batch with zero rows (rows never
    # interact, and the padding's outputs are dropped, so its gradients are zero).
    pad = -batch % BLOCK
    if pad:
        xz = jnp.pad(xz, [(0, 0), (0, 0), (0, pad), (0, 0)])
        h0, c0 = (jnp.pad(s, [(0, pad), (0, 0)]) for s in (h0, c0))
    hs, cs = _recurrence(xz, _split(recurrent_kernel, units), h0, c0, interpret)
    hs, c = hs[:, :batch], cs[-1, :batch]
    return jnp.swapaxes(hs, 0, 1), hs[-1], c
