"""Fresh random inputs for a model, and the comparison with Keras."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

ROWS = 6  # rows per verification case


def _mask_values(model) -> dict:
    """How padding looks for this model: {"int": 0} for Embedding(mask_zero),
    {"float": value} for a Masking layer."""
    found = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.Embedding) and layer.mask_zero:
            found["int"] = 0
        if isinstance(layer, keras.layers.Masking):
            found["float"] = float(layer.mask_value)
    return found


def _vocabulary(model) -> int:
    sizes = [
        layer.input_dim
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.Embedding)
    ]
    return min(sizes) if sizes else 10


def lengths_for(rows: int, steps: int, rng) -> np.ndarray:
    """Row lengths covering the edges: full, one step, empty, then random."""
    edges = [steps, 1, 0]
    rest = rng.integers(1, steps + 1, size=max(rows - len(edges), 0))
    return np.concatenate([edges, rest])[:rows].astype(np.int32)


# Integers a float dtype holds exactly, from 0 (float64 and wider: 2**53).
_EXACT_INTEGERS = {"bfloat16": 2**8, "float16": 2**11, "float32": 2**24}


def _id_vocabularies(model, specs) -> list[int | None]:
    """Per spec, how many ids to draw it from, or None for an input that is
    not ids: an integer input, or a float one that feeds an Embedding directly
    (a `keras.Input` of the default float32, which the Embedding casts). The
    count is the smallest `input_dim` of the Embeddings the input feeds (of all
    the model's, if none is found), kept exact in a float16/bfloat16 input."""
    rows = embedding_rows(model, specs)
    everything = _vocabulary(model)
    counts = []
    for spec, n in zip(specs, rows):
        if spec.dtype.is_integer:
            counts.append(n or everything)
        elif spec.dtype.is_floating and n:
            counts.append(min(n, _EXACT_INTEGERS.get(spec.dtype.name, 2**53)))
        else:
            counts.append(None)
    return counts


def embedding_rows(model, specs) -> list[int | None]:
    """Per spec (the model's own inputs, in order), the rows of the smallest
    Embedding that input feeds directly, or None."""
    inputs = list(getattr(model, "inputs", None) or [])
    fed: dict[int, list[int]] = {}
    if len(inputs) == len(specs):
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.Embedding):
                for node in layer._inbound_nodes:
                    for tensor in node.input_tensors:
                        for i, x in enumerate(inputs):
                            if x is tensor:
                                fed.setdefault(i, []).append(layer.input_dim)
    return [min(fed[i]) if i in fed else None for i in range(len(specs))]


def _padded(arrays, specs, pads, lengths, ids, starts=None, holes=False):
    """Pads each sequence input (ids (batch, time) for Embedding(mask_zero),
    features (batch, time, features) for Masking) after its row's length;
    `ids`: per input, whether it holds ids (`_id_vocabularies`); `starts` left-pads
    as well, `holes` masks one inner step too."""
    out = []
    for array, spec, is_ids in zip(arrays, specs, ids):
        if not _padded_input(spec, pads, is_ids):
            out.append(array)
            continue
        kind = "int" if is_ids else "float"
        array = array.copy()
        for row, length in enumerate(lengths):
            start = 0 if starts is None else starts[row]
            array[row, :start] = pads[kind]
            array[row, start + length :] = pads[kind]
            if holes and length > 2 and start + 1 < array.shape[1]:
                array[row, start + 1] = pads[kind]
        out.append(array)
    return out


def undrawable(specs):
    """The first spec whose inputs cannot be drawn at random (not numbers:
    strings, bools), or None."""
    return next(
        (s for s in specs if not (s.dtype.is_integer or s.dtype.is_floating)), None
    )


def _padded_input(spec, pads, is_ids: bool) -> bool:
    """Whether `_padded` pads this input: ids (batch, time) where the model
    has Embedding(mask_zero), float features (batch, time, features) where it
    has Masking; not a (batch, 1) input."""
    kind = "int" if is_ids else "float"
    if len(spec.shape) < 2 or spec.shape[1] == 1:  # not a sequence: a category
        return False
    return kind in pads and len(spec.shape) >= (2 if kind == "int" else 3)


def random_cases(model, specs, rows: int, steps: int, padding: str, seed: int):
    """Named lists of input arrays matching `specs`: `rows` rows (whatever the
    spec's batch size), `steps` where the time axis is None.

    Always a full-length case; for a model that masks (Embedding(mask_zero) or
    Masking) and an input that carries its padding, a right-padded case with
    lengths steps, 1, 0 and random ones; with `padding="any"` also left
    padding and holes. No cases when an input cannot be drawn (`undrawable`:
    the caller's `verify_inputs` cover such models).
    """
    if undrawable(specs) is not None:
        return []
    rng = np.random.default_rng(seed)
    pads = _mask_values(model)
    vocabularies = _id_vocabularies(model, specs)
    ids = [v is not None for v in vocabularies]
    padded = [s for s, i in zip(specs, ids) if _padded_input(s, pads, i)]
    # A static time axis wins over `steps`: the longest of the padded inputs'
    # (their lengths are the ones drawn), else the first other one longer
    # than a step (not a (batch, 1) category).
    times = [s.shape[1] for s in padded]
    if times and None not in times:
        steps = max(times)
    elif not times:
        for spec in specs:
            if len(spec.shape) >= 2 and (spec.shape[1] or 0) > 1:
                steps = spec.shape[1]
                break

    def draw():
        arrays = []
        for spec, count in zip(specs, vocabularies):
            shape = [rows, *spec.shape[1:]]
            shape = [steps if d is None else d for d in shape]
            if count is not None:
                low = 1 if count > 1 else 0
                arrays.append(
                    rng.integers(low, count, shape).astype(spec.dtype.as_numpy_dtype)
                )
            elif spec.dtype.is_floating:
                arrays.append(
                    (0.8 * rng.standard_normal(shape)).astype(spec.dtype.as_numpy_dtype)
                )
        return arrays

    cases = [("random, full length", draw())]
    if padded:
        lengths = lengths_for(rows, steps, rng)
        cases.append(
            (
                f"right-padded, lengths {lengths.tolist()}",
                _padded(draw(), specs, pads, lengths, ids),
            )
        )
        if padding == "any":
            starts = rng.integers(0, steps // 2 + 1, size=rows)
            lengths = np.minimum(lengths, steps - starts)
            cases.append(
                (
                    "left padding and holes",
                    _padded(
                        draw(), specs, pads, lengths, ids, starts=starts, holes=True
                    ),
                )
            )
    return cases


@contextlib.contextmanager
def states_kept(model):
    """Restores the state variables of the model's stateful recurrent layers
    on exit: verifying runs the model, which would advance them."""
    variables = [
        v
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.RNN) and layer.stateful and layer.states
        for v in keras.tree.flatten(layer.states)
    ]
    values = [v.numpy() for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, values):
            variable.assign(value)


def model_inputs(model, tensors):
    """The serving inputs (flat, in the order of `model.inputs`) as the model
    takes them: one tensor, a list, or the dict of a functional model built on
    a dict of `Input`s (whose keys need not be sorted)."""
    try:
        structure = model.input
    except (AttributeError, ValueError):  # a subclassed model
        structure = None
    if isinstance(structure, dict) and len(structure) == len(tensors):
        return keras.tree.pack_sequence_as(structure, list(tensors))
    return tensors[0] if len(tensors) == 1 else list(tensors)


def conform(array, name: str, shape, dtype, what: str, any_rows: bool = False):
    """`array` as the export's input `name` of `shape` (None: any size) and
    `dtype` takes it, or a ValueError that says what differs. Casts follow
    numpy's "same_kind" rule (int64 ids -> int32, float64 -> float32, ints
    or bools -> floats; never floats -> ints), and a value the target cannot
    hold is an error; `any_rows` accepts any number of rows."""
    array = np.asarray(array)
    shape = tuple(shape)
    wrong = array.ndim != len(shape) or any(
        want is not None and got != want and not (axis == 0 and any_rows)
        for axis, (got, want) in enumerate(zip(array.shape, shape))
    )
    if wrong:
        wanted = tuple("any" if d is None or (i == 0 and any_rows) else d
                       for i, d in enumerate(shape))  # fmt: skip
        hint = ""
        if len(shape) >= 2 and shape[1] is not None and array.ndim == len(shape):
            hint = f"; pad (or cut) each sequence to {shape[1]} steps"
        raise ValueError(
            f"{what} for input '{name}' has shape {array.shape}; the export takes "
            f"{wanted}{hint}."
        )
    target = np.dtype(dtype)
    if target.kind == "O" or array.dtype == target:  # strings go in as they are
        return array
    if not np.can_cast(array.dtype, target, casting="same_kind"):
        raise ValueError(
            f"{what} for input '{name}' has dtype {array.dtype}; the export takes "
            f"{target}."
        )
    if array.dtype.kind in "iu" and target.kind in "iu" and array.size:
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise ValueError(
                f"{what} for input '{name}' has values outside {target}'s range "
                f"[{info.min}, {info.max}]."
            )
    with np.errstate(over="ignore"):  # a float beyond the range: the error below
        cast = array.astype(target)
    if target.kind == "f" and np.isinf(cast).sum() > np.isinf(array).sum():
        raise ValueError(
            f"{what} for input '{name}' has values beyond {target}'s range."
        )
    return cast


def flat_numpy(outputs) -> list[np.ndarray]:
    """Outputs as a list of arrays. A dict (a signature's result, or a model's
    named outputs) is ordered output_0, output_1, ..., else by key."""
    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs, key=_output_order)]
    return [
        np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(outputs)
    ]


def _output_order(name: str):
    prefix, _, number = name.rpartition("_")
    return (
        (0, int(number), "")
        if prefix == "output" and number.isdigit()
        else (1, 0, name)
    )


# A weight past this is a diverged model's: float32 rounding of the products
# it enters exceeds any export tolerance (1e4 x 2**-24 > 1e-5 at inputs ~1).
HUGE_WEIGHT = 1e4


def largest_weight(model) -> float:
    """max |w| over the model's trainable weights (NaN if one is NaN, 0.0 if
    there are none); not the non-trainable ones: seeds, statistics."""
    largest = 0.0
    for weight in model.trainable_weights:
        values = np.abs(np.asarray(keras.ops.convert_to_numpy(weight), "float64"))
        if values.size:
            if np.isnan(values).any():
                return float("nan")
            largest = max(largest, float(values.max()))
    return largest


def max_abs_diff(actual: list, expected: list) -> float:
    """Largest |actual - expected| over all outputs.

    inf on a shape mismatch or a NaN on one side only. NaN on both sides at the
    same place counts as equal: the export reproduces Keras there (e.g. a masked
    mean over a fully padded row is 0/0 in Keras too).
    """
    if len(actual) != len(expected):
        return float("inf")
    worst = 0.0
    for a, e in zip(actual, expected):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if a.shape != e.shape:
            return float("inf")
        if a.size:
            a_nan, e_nan = np.isnan(a), np.isnan(e)
            if (a_nan != e_nan).any():
                return float("inf")
            with np.errstate(invalid="ignore"):  # inf - inf is caught below
                diff = np.abs(np.where(a_nan, 0.0, a) - np.where(e_nan, 0.0, e))
            if np.isnan(diff).any():  # inf - inf
                return float("inf")
            worst = max(worst, float(diff.max()))
    return worst


def keras_outputs(model, preprocess, arrays) -> list[np.ndarray]:
    """The Keras model's own outputs (the reference), eagerly."""
    if preprocess is not None:
        x = preprocess(*[tf.constant(a) for a in arrays])
    else:
        x = model_inputs(model, arrays)
    return flat_numpy(model(x, training=False))
