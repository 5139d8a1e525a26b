"""Export Keras models that use `keras_lstm` layers to SavedModel and TFLite.

TensorFlow backend only; import it explicitly (`import keras_lstm` stays free of
TensorFlow)::

    from keras_lstm import export
    export.export_saved_model(model, "saved_models/sentiment/serving")
    export.export_tflite(model, "saved_models/sentiment/model.tflite", max_length=200)

Every export is verified right after writing, before it replaces anything: the
artifact is reloaded (`tf.saved_model.load`, or the LiteRT interpreter), run on
fresh random inputs (full length, right-padded with lengths max, 1, 0 and random
when the model masks) and compared with the Keras model; the result goes to
`<path>.json`. Writes go to a temporary sibling first and are renamed into place.

The `.tflite` uses builtin ops only (no Flex / Select TF ops), so it runs in the
standalone LiteRT interpreter. Each `keras_lstm.LSTM` becomes one fused
`UNIDIRECTIONAL_SEQUENCE_LSTM` op when it can (see `export_tflite`); the other
recurrent layers run as builtin ops in a TFLite WHILE loop.
"""

from __future__ import annotations

import datetime
import json
import keyword
import math
import numbers
import pathlib
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import keras_lstm
from keras_lstm import fused
from keras_lstm.export import _files, _lowering, _verify

__all__ = [
    "ExportVerificationError",
    "export_saved_model",
    "export_tflite",
    "tflite_op_names",
    "tflite_runner",
]

FUSED_LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"


class ExportVerificationError(RuntimeError):
    """The reloaded export did not match the Keras model; nothing was replaced."""


# --------------------------------------------------------------------- checks


def _check_model(model) -> None:
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "keras_lstm.export needs the TensorFlow backend; got "
            f"KERAS_BACKEND='{keras.backend.backend()}'."
        )
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model; received {type(model)!r}.")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built: call it on data or start it with "
            "keras.Input(...) before exporting."
        )


def _check_tflite_layers(model) -> None:
    """Recurrent layers that cannot become builtin TFLite ops."""
    bad = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras_lstm.LSTM, keras_lstm.GRU)):
            if layer.stateful:
                bad.append(f"'{layer.name}' (stateful=True: state lives in variables)")
            elif layer.cell.compute_dtype != "float32":
                bad.append(
                    f"'{layer.name}' (dtype policy '{layer.dtype_policy.name}': "
                    "TFLite's builtin recurrent ops compute in float32; export a "
                    "float32 copy of the model, same weights via set_weights)"
                )
        elif isinstance(layer, keras.layers.RNN):
            bad.append(
                f"'{layer.name}' ({type(layer).__module__}.{type(layer).__name__}: "
                "its while loop needs Flex ops; use keras_lstm.LSTM / keras_lstm.GRU, "
                "same weights via set_weights, or export "
                "keras_lstm.replace_builtins(model))"
            )
        elif not isinstance(layer, keras.layers.InputLayer) and str(
            layer.compute_dtype
        ).startswith(("float16", "bfloat16", "float64")):
            # Their float16 / float64 ops (Gather, MatMul, ...) are no
            # builtins: the converter would fail with pages of MLIR.
            bad.append(
                f"'{layer.name}' (dtype policy '{layer.dtype_policy.name}': "
                "TFLite's builtin ops here compute in float32; export a float32 "
                "copy of the model, same weights via set_weights)"
            )
    if bad:
        raise ValueError(
            "Cannot export to TFLite with builtin ops only; unsupported layer(s): "
            + "; ".join(bad)
        )


def _check_atol(atol: float) -> float:
    """A positive finite number (numpy scalars too), as a float."""
    if (
        isinstance(atol, bool)
        or not isinstance(atol, numbers.Real)
        or not (atol > 0 and math.isfinite(atol))
    ):
        raise ValueError(f"atol must be a positive number; received atol={atol!r}.")
    return float(atol)


def _check_flags(**flags) -> None:
    """Each flag must be True or False (numpy bools too): a string such as
    "no" would otherwise count as True."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(
                f"`{name}` must be True or False. Received: {name}={value!r}"
            )


def _check_seed(seed) -> int:
    """An integer in [0, 2**32) (numpy integers too, not bools), as an int:
    it seeds numpy's generator and goes into the JSON report."""
    if (
        isinstance(seed, (bool, np.bool_))
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed < 2**32
    ):
        raise ValueError(f"seed must be an int in [0, 2**32); received seed={seed!r}.")
    return int(seed)


def _positive_int(name: str, value: int | None) -> int | None:
    """None, or a positive integer (numpy integers too, not bools) as an int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; received {value!r}.")
    return int(value)


def _input_specs(model, input_signature) -> list[tf.TensorSpec]:
    """Named TensorSpecs of the exported function's inputs."""
    if input_signature is not None:
        if isinstance(input_signature, (tf.TensorSpec, keras.InputSpec)):
            input_signature = [input_signature]
        specs = []
        for i, spec in enumerate(input_signature):
            if isinstance(spec, keras.InputSpec):
                spec = tf.TensorSpec(spec.shape, spec.dtype or "float32", spec.name)
            if not isinstance(spec, tf.TensorSpec):
                raise ValueError(
                    "input_signature must be a list of tf.TensorSpec or "
                    f"keras.InputSpec; item {i} is {spec!r}."
                )
            if spec.shape.rank is None:
                raise ValueError(
                    f"input_signature item {i} ({spec!r}) has no shape; give "
                    "one, None for any size, e.g. shape=(None, None, 3)."
                )
            specs.append(spec)
    else:
        inputs = getattr(model, "inputs", None)
        if not inputs:
            raise ValueError(
                f"Model '{model.name}' has no symbolic inputs (subclassed model?); "
                "pass input_signature=[tf.TensorSpec(shape, dtype, name), ...]."
            )
        specs = [tf.TensorSpec(t.shape, t.dtype, t.name) for t in inputs]
    # A name becomes both a Python parameter of the serving function and a TF
    # op name: ASCII letters, digits and underscores, starting with a letter,
    # not a keyword, unique. Other names (and Keras' generated ones) become
    # `inputs` / `inputs_<i>`, made unique as well.
    # TensorFlow compares the names in lower case, and `self` is the traced
    # method's own parameter.
    valid = [
        spec.name
        if spec.name
        and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", spec.name)
        and not keyword.iskeyword(spec.name)
        and spec.name != "self"
        and not spec.name.startswith("keras_tensor")
        else None
        for spec in specs
    ]
    if input_signature is not None:
        _check_input_order(model, [spec.name for spec in specs])
    taken = {name.lower() for name in valid if name}
    named = []
    for i, (spec, name) in enumerate(zip(specs, valid)):
        if name is None or name.lower() in {s.name.lower() for s in named}:
            name = base = "inputs" if len(specs) == 1 else f"inputs_{i}"
            suffix = 1
            while name.lower() in taken:
                name, suffix = f"{base}_{suffix}", suffix + 1
            taken.add(name.lower())
        named.append(tf.TensorSpec(spec.shape, spec.dtype, name))
    return named


def _check_input_order(model, names: list) -> None:
    """ValueError if an `input_signature`'s names are the model's input names
    in another order: the serving inputs reach the model by position, so they
    would be swapped (and the check, fed the same way, would pass)."""
    try:
        structure = model.input
    except (AttributeError, ValueError):  # a subclassed model: no names
        return
    flat = keras.tree.flatten(structure)
    orders = [[getattr(t, "name", None) for t in flat]]
    if isinstance(structure, dict):  # keys, in the order tree.flatten takes
        orders.append([path[0] for path, _ in keras.tree.flatten_with_path(structure)])
    for order in orders:
        if names != order and sorted(map(str, names)) == sorted(map(str, order)):
            raise ValueError(
                f"input_signature names the model's inputs in another order "
                f"({names}; the model takes {order}): the inputs reach the model "
                "by position, so list the specs in the model's order."
            )


def _static_specs(specs, batch_size: int | None, max_length: int | None):
    """TFLite needs static shapes: a variable batch axis -> `batch_size` (1 by
    default), a variable time axis (axis 1) -> `max_length`. Static axes stay;
    a `batch_size` that contradicts them is an error, and so is a
    `max_length` where no input has a variable time axis and none has that
    many steps."""
    batch_size = _positive_int("batch_size", batch_size)
    max_length = _positive_int("max_length", max_length)
    variable_time = any(len(s.shape) >= 2 and s.shape[1] is None for s in specs)
    static_steps = [s.shape[1] for s in specs if len(s.shape) >= 2]
    if max_length and not static_steps:
        raise ValueError(
            f"max_length={max_length}, but no input has a time axis (rank >= 2); "
            "with `preprocess`, the steps are what it returns: give it a fixed "
            "length (e.g. TextVectorization(output_sequence_length=N))."
        )
    if max_length and not variable_time and max_length not in static_steps:
        first = next(s for s in specs if len(s.shape) >= 2)
        raise ValueError(
            f"Input '{first.name}' has {first.shape[1]} timesteps but "
            f"max_length={max_length} (and no input has a variable time axis)."
        )
    out = []
    for spec in specs:
        shape = list(spec.shape)
        if shape and shape[0] is None:
            shape[0] = batch_size or 1
        elif shape and batch_size is not None and shape[0] != batch_size:
            raise ValueError(
                f"Input '{spec.name}' has a static batch size of {shape[0]} "
                f"but batch_size={batch_size}; leave batch_size out or match it."
            )
        if len(shape) >= 2:
            if shape[1] is None:
                if max_length is None:
                    raise ValueError(
                        f"Input '{spec.name}' has a variable time axis {spec.shape}; "
                        "pass max_length=N (callers pad their sequences to N steps)."
                    )
                shape[1] = max_length
        if any(d is None for d in shape):
            raise ValueError(
                f"Input '{spec.name}' shape {spec.shape} has unknown dimensions "
                "besides batch and time; give a static input_signature."
            )
        out.append(tf.TensorSpec(shape, spec.dtype, spec.name))
    return out


def _serving_fn(model, preprocess):
    def serve(*args):
        if preprocess is not None:
            x = preprocess(*args)
        else:
            x = _verify.model_inputs(model, args)
        outputs = model(x, training=False)
        if isinstance(outputs, dict):
            return dict(outputs)
        return {f"output_{i}": t for i, t in enumerate(keras.tree.flatten(outputs))}

    return serve


def _archive(model, preprocess, specs, path, xla: bool = False) -> None:
    if xla:
        _write_archive(model, preprocess, specs, path)
        return
    with fused.disabled():  # no XLA-compiled calls: TF Serving runs the graph
        _write_archive(model, preprocess, specs, path)


def _write_archive(model, preprocess, specs, path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)
    if isinstance(preprocess, tf.__internal__.tracking.Trackable):
        # Held by a tf.Module so its lookup tables are saved too; tracking the
        # layer directly fails for an adapted but unbuilt TextVectorization.
        holder = tf.Module()
        holder.preprocess = preprocess
        archive.track(holder)
    archive.add_endpoint("serve", _serving_fn(model, preprocess), specs)
    archive.write_out(str(path), verbose=False)


def _given_cases(verify_inputs, specs, any_rows=False, rows_of=None):
    """The user's `verify_inputs` as a case, each array checked against its
    spec (shape, dtype; `_verify.conform`). A dict is taken by input name.
    `rows_of`: the row count must be a multiple of it (a .tflite's batch)."""
    if verify_inputs is None:
        return []
    if isinstance(verify_inputs, dict):
        names = [s.name for s in specs]
        unknown = sorted(set(verify_inputs) - set(names))
        missing = [n for n in names if n not in verify_inputs]
        if unknown or missing:
            raise ValueError(
                f"verify_inputs is a dict with keys {sorted(verify_inputs)}; the "
                f"signature's inputs are {names} (unknown: {unknown}, missing: "
                f"{missing})."
            )
        verify_inputs = [verify_inputs[n] for n in names]
    arrays = (
        verify_inputs if isinstance(verify_inputs, (list, tuple)) else [verify_inputs]
    )
    if len(arrays) != len(specs):
        raise ValueError(
            f"verify_inputs has {len(arrays)} arrays; the signature has {len(specs)} "
            f"inputs ({[s.name for s in specs]})."
        )
    arrays = [
        _verify.conform(
            a, s.name, s.shape, s.dtype.as_numpy_dtype, "verify_inputs", any_rows
        )
        for s, a in zip(specs, arrays)
    ]
    if not arrays[0].shape[0]:
        raise ValueError(
            f"verify_inputs has 0 rows ({specs[0].name!r}: shape "
            f"{arrays[0].shape}); give at least one."
        )
    if rows_of and arrays[0].shape[0] % rows_of:
        raise ValueError(
            f"verify_inputs has {arrays[0].shape[0]} rows; the .tflite takes "
            f"batches of exactly batch_size={rows_of} rows (give a multiple)."
        )
    return [("given verify_inputs", arrays)]


def _check_ids(name: str, value: np.ndarray, rows: int | None, what: str) -> None:
    """ValueError naming `name` if it holds an id outside [-rows, rows), the
    rows of the Embedding it feeds (None: not an id input)."""
    if rows is None:
        return
    outside = (value < -rows) | (value >= rows)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{what} {name!r} holds id {value[where]} at {list(where)}; "
            f"the model's Embedding has {rows} rows (ids 0 to {rows - 1}; "
            f"-{rows} to -1 count from the end, as in the Keras model)."
        )


def _check_given_ids(model, specs, given, preprocess) -> None:
    """`verify_inputs` ids each Embedding has a row for, checked before any
    conversion (TensorFlow and LiteRT stop with bare gather errors)."""
    if not given or preprocess is not None:
        return
    for spec, rows, array in zip(
        specs, _verify.embedding_rows(model, specs), given[0][1]
    ):
        _check_ids(spec.name, array, rows, "verify_inputs")


def _check_verifiable(specs, given, preprocess) -> None:
    """Raises before anything is written when verification would have no
    inputs: a `preprocess`, or an input that cannot be drawn at random (e.g.
    strings, a bool mask), and no `verify_inputs`."""
    if given:
        return
    if preprocess is not None:
        raise ValueError(
            "Nothing to verify on: with preprocess=..., pass verify_inputs=[...] "
            "(or verify=False)."
        )
    spec = _verify.undrawable(specs)
    if spec is not None:
        raise ValueError(
            f"Cannot draw random inputs of dtype {spec.dtype.name} for input "
            f"'{spec.name}'; pass verify_inputs=[...] (e.g. raw strings)."
        )


def _build_preprocess(preprocess, given, specs) -> None:
    """Builds an unbuilt Keras layer `preprocess` by calling it eagerly on
    `verify_inputs` (else on one row of zeros, or empty strings, shaped as the
    signature): built inside the export's trace, its weights would be graph
    tensors that cannot be saved."""
    if not isinstance(preprocess, keras.layers.Layer) or preprocess.built:
        return
    if given:
        preprocess(*given[0][1])
        return
    blank = [
        tf.zeros([1 if d is None else d for d in s.shape], s.dtype)
        if s.dtype != tf.string
        else tf.fill([1 if d is None else d for d in s.shape], "")
        for s in specs
    ]
    preprocess(*blank)


def _meta(kind: str, path: pathlib.Path, specs, atol: float, seed: int) -> dict:
    return {
        "format": kind,
        # The export's name: it sits next to this report. Not an absolute path,
        # which goes stale when the folder is moved or swapped into place.
        "path": path.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_lstm": keras_lstm.__version__,
        },
        "inputs": [
            {"name": s.name, "shape": list(s.shape), "dtype": s.dtype.name}
            for s in specs
        ],
        "atol": atol,
        "seed": seed,
    }


def _finish(tmp, path, report, atol, verify, model):
    """Installs `tmp` at `path` if it passed; called inside `_files.staged`,
    which removes it (and new folders) when this raises."""
    worst = max((c["max_abs_diff"] for c in report["cases"]), default=None)
    report["max_abs_diff"] = worst
    report["verified"] = verify
    report["passed"] = None if not verify else worst <= atol
    if report["passed"] is False:
        detail = "; ".join(
            f"{c['case']}: {c['max_abs_diff']:.3g}" for c in report["cases"]
        )
        hint = ""
        largest = _verify.largest_weight(model)
        if not largest < _verify.HUGE_WEIGHT:  # NaN too
            hint = (
                f" The model's largest weight is {largest:.3g}: at that size "
                "float32 rounding alone tells two runtimes apart. Did training "
                "diverge (too large a learning rate, no gradient clipping)?"
            )
        elif report.get("padding") == "right" and report.get("fused_lstm_ops"):
            hint = (
                " The fused LSTM op reads right-padded rows only: for left "
                "padding or holes in the mask, export with padding='any'."
            )
        raise ExportVerificationError(
            f"{report['format']} export of '{path}' differs from the Keras model by "
            f"{worst:.3g} > atol={atol:g} ({detail}). Nothing was written.{hint}"
        )
    _files.install_with_report(tmp, path, _files.json_text(report))
    return report


# ---------------------------------------------------------------- SavedModel


def export_saved_model(
    model: keras.Model,
    path: str | pathlib.Path,
    *,
    input_signature: Sequence[tf.TensorSpec] | None = None,
    preprocess: Callable[..., Any] | None = None,
    verify_inputs: Sequence[np.ndarray] | None = None,
    overwrite: bool = False,
    verify: bool = True,
    atol: float = 1e-5,
    seed: int = 0,
    xla: bool = False,
) -> dict:
    """Writes a TF SavedModel (for TF Serving) and checks it against Keras.

    The SavedModel holds the model's variables and two signatures, `serve` and
    `serving_default`, taking the named inputs of `input_signature` and returning
    `{"output_0": ..., ...}` (or the model's own output dict). It loads with
    `tf.saved_model.load` in a process that never imports keras or keras_lstm.
    Masks (`Embedding(mask_zero=True)`, `Masking`) are part of the graph.

    Args:
        model: A built Keras model (TensorFlow backend) using any layers.
        path: Folder to create; the report goes to `<path>.json`.
        input_signature: `tf.TensorSpec`s of the serving inputs, in the
            order of the model's inputs, which they reach by position (the
            model's own input names in another order raise `ValueError`).
            Their names become the signature's argument names; a name that
            is not ASCII letters, digits and underscores starting with a
            letter, or is a keyword or `self`, or is taken (TensorFlow
            compares names in lower case), becomes `inputs` / `inputs_<i>`.
            Default: the model's `Input`s, batch and time left variable.
        preprocess: Optional function (or Keras layer) traced into the
            signature before the model, mapping the serving inputs to the
            model's input, e.g. a `TextVectorization` layer so the SavedModel
            takes raw strings. Layers and `tf.Module`s are tracked (their
            lookup tables saved); a plain function must not capture a lookup
            table (export fails on the untracked resource): pass the layer or
            module holding it instead.
        verify_inputs: Arrays for the serving inputs to verify on as well (a
            list in signature order, or a dict keyed by the signature's input
            names, as the report's `inputs` lists them); needed when
            the inputs cannot be drawn at random (strings, bools) or with
            `preprocess`.
        overwrite: Replace an existing `path`. Otherwise an existing path
            raises `FileExistsError` and is left untouched.
        verify: Reload and compare with Keras before installing (default).
        atol: Largest allowed absolute difference (float32: 1e-5).
        seed: Seed of the random verification inputs, an int in [0, 2**32).
        xla: Keep our layers' XLA-compiled TensorFlow inference loop (CPU,
            up to 256 units) in the graph: 1.8x faster to serve in
            TensorFlow at the IMDB-like shape (benchmarks/NOTES.md, section
            20), but TF Serving runs XLA:CPU only with its experimental
            `--xla_cpu_compilation_enabled`. Default: plain TensorFlow loops,
            as the built-in layers export. Where the engine does not apply
            (mixed precision, more than 256 units, a GPU), a warning says the
            SavedModel has plain loops.

    Returns:
        The report (also written to `<path>.json`): `path` (the export's name,
        next to the report), inputs, per-case and overall `max_abs_diff`,
        `passed` (None with `verify=False`), `xla_compiled_calls` (0 unless
        `xla=True` kept some), versions.

    Raises:
        ValueError: The model is not built, or an argument is invalid.
        FileExistsError: `path` exists and `overwrite` is False, or is not a
            SavedModel folder that `overwrite` may replace.
        NotADirectoryError, IsADirectoryError: A parent of `path` is a file,
            or the report's path `<path>.json` is a folder.
        RuntimeError: The Keras backend is not TensorFlow.
        ExportVerificationError: The reloaded SavedModel differs from Keras by
            more than `atol`; nothing was written.

    Example:

    ```python
    from keras_lstm import export
    report = export.export_saved_model(model, "saved_models/demo/serving")
    report["max_abs_diff"]  # e.g. 2.4e-07
    # Elsewhere, without keras_lstm:
    serve = tf.saved_model.load("saved_models/demo/serving").signatures[
        "serving_default"]
    serve(inputs=tf.constant(ids, tf.int32))["output_0"]
    ```
    """
    _check_model(model)
    atol = _check_atol(atol)
    seed = _check_seed(seed)
    _check_flags(overwrite=overwrite, verify=verify, xla=xla)
    specs = _input_specs(model, input_signature)
    given = _given_cases(verify_inputs, specs)
    _check_given_ids(model, specs, given, preprocess)
    if verify:
        _check_verifiable(specs, given, preprocess)
    path = _files.check_target(path, overwrite, "folder")
    _build_preprocess(preprocess, given, specs)
    with _files.staged(path) as tmp:
        _archive(model, preprocess, specs, tmp, xla=xla)
        report = _meta("saved_model", path, specs, atol, seed)
        report["signatures"] = ["serve", "serving_default"]
        report["xla_compiled_calls"] = _xla_compiled_calls(tmp)
        if xla and not report["xla_compiled_calls"]:
            warnings.warn(
                "export_saved_model(xla=True): no layer traced an XLA-compiled "
                "loop (it needs our LSTM/GRU with use_cudnn='auto', float32, at "
                "most 256 units, not unrolled, and no GPU visible to "
                "TensorFlow); the SavedModel has plain loops",
                stacklevel=2,
            )
        report["cases"] = []
        if verify:
            serve = tf.saved_model.load(str(tmp)).signatures["serving_default"]
            with _verify.states_kept(model):  # a stateful model's, as they were
                report["cases"] = _verify_saved_model(
                    model, preprocess, specs, serve, given, seed
                )
        return _finish(tmp, path, report, atol, verify, model)


def _xla_compiled_calls(folder: pathlib.Path) -> int:
    """Calls in a SavedModel's graph that XLA must compile (`_XlaMustCompile`)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return sum(bool(n.attr["_XlaMustCompile"].b) for n in nodes)


def _verify_saved_model(model, preprocess, specs, serve, given, seed) -> list:
    # A static batch size (an Input's batch_size, a stateful model) fixes the
    # rows; otherwise a second case checks another batch size.
    static = [s.shape[0] for s in specs if s.shape.rank and s.shape[0] is not None]
    rows = static[0] if static else _verify.ROWS
    cases = list(given)
    if preprocess is None:
        cases += _verify.random_cases(model, specs, rows, 12, "any", seed)
        # A second length, if variable (and batch size, if variable).
        second = rows if static else 1
        cases += [
            (f"{name}, {second} row{'s' * (second > 1)}", arrays)
            for name, arrays in _verify.random_cases(
                model, specs, second, 5, "right", seed + 1
            )[:1]
        ]
    results = []
    for name, arrays in cases:
        kwargs = {s.name: tf.constant(a, s.dtype) for s, a in zip(specs, arrays)}
        got = _verify.flat_numpy(serve(**kwargs))
        expected = _verify.keras_outputs(model, preprocess, arrays)
        results.append(
            {"case": name, "max_abs_diff": _verify.max_abs_diff(got, expected)}
        )
    return results


# -------------------------------------------------------------------- TFLite


def _interpreter(model_content: bytes, num_threads: int | None = None):
    """LiteRT's standalone interpreter (`ai-edge-litert`), else TF's."""
    try:
        from ai_edge_litert import interpreter as litert

        runtime = "ai_edge_litert"
    except ImportError:  # pragma: no cover - the test extras install it
        litert = tf.lite
        runtime = "tf.lite"
    interpreter = litert.Interpreter(
        model_content=model_content, num_threads=num_threads
    )
    return interpreter, runtime


def tflite_op_names(tflite: bytes | str | pathlib.Path) -> list[str]:
    """The op names of a `.tflite` model, every subgraph (WHILE bodies too).

    Args:
        tflite: The model's bytes or a path to a `.tflite` file.

    Returns:
        One name per op, subgraph by subgraph in graph order: builtin names
        such as `"UNIDIRECTIONAL_SEQUENCE_LSTM"`, custom ops by their custom
        code (Flex ops start with `"Flex"`).

    Example:

    ```python
    ops = export.tflite_op_names("model.tflite")
    ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM")  # one per fused LSTM
    ```
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    tflite = _tflite_bytes(tflite)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    builtin = {
        code: name
        for name, code in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    names = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            number = max(code.builtinCode, code.deprecatedBuiltinCode)
            if number == schema.BuiltinOperator.CUSTOM and code.customCode:
                custom = code.customCode
                names.append(custom.decode() if isinstance(custom, bytes) else custom)
            else:
                names.append(builtin[number])
    return names


def _tflite_bytes(tflite: bytes | str | pathlib.Path) -> bytes:
    """A .tflite's bytes; a path that is not one raises, naming it (else a
    folder gave IsADirectoryError and another file LiteRT's "not a valid
    Flatbuffer buffer")."""
    if isinstance(tflite, bytes):
        data, what = tflite, "These bytes are"
    else:
        path = pathlib.Path(tflite)
        if not path.is_file():
            kind = "a folder" if path.is_dir() else "missing"
            raise ValueError(f"{path} is not a .tflite file: it is {kind}.")
        data, what = path.read_bytes(), f"{path} is"
    if data[4:8] != b"TFL3":  # the TFLite schema's file identifier
        raise ValueError(f"{what} not a TFLite model (no TFL3 identifier).")
    return data


def tflite_runner(
    tflite: bytes | str | pathlib.Path, num_threads: int | None = None
) -> Callable[..., dict]:
    """A function running the `.tflite` model's serving signature in LiteRT.

    Args:
        tflite: The model's bytes or a path to a `.tflite` file.
        num_threads: Interpreter threads (default: LiteRT's choice).

    Returns:
        `run(**inputs) -> {"output_0": array, ...}`, inputs named as in the
        export's input signature, each of exactly the exported shape (pad
        sequences to `max_length` yourself). Inputs are cast as numpy's
        "same_kind" rule allows (int64 ids -> int32, float64 -> float32);
        a missing or unknown name, a wrong shape or dtype, or a value out of
        range raises `ValueError` naming the input. Given a path whose export
        report (`<path>.json`) lists an input's `embedding_rows` (an input that
        feeds an Embedding directly), an id outside [-rows, rows) raises too,
        naming it (negative ids count from the end, as in Keras' `take`);
        LiteRT itself stops with a bare "gather index out of bounds".

    Example:

    ```python
    run = export.tflite_runner("model.tflite")
    run(inputs=ids.astype("int32"))["output_0"]
    ```
    """
    data = _tflite_bytes(tflite)
    id_rows = {}
    if not isinstance(tflite, bytes):
        report = _files.report_path(pathlib.Path(tflite))
        if report.is_file():
            id_rows = {
                entry["name"]: entry["embedding_rows"]
                for entry in json.loads(report.read_text()).get("inputs", [])
                if "embedding_rows" in entry
            }
    interpreter, _ = _interpreter(data, num_threads=num_threads)
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()

    def checked(name, value):
        _check_ids(name, value, id_rows.get(name), "The argument")
        return value

    def run(**inputs) -> dict:
        if set(inputs) != set(details):
            raise ValueError(
                f"The .tflite takes inputs {sorted(details)}; received "
                f"{sorted(inputs)}."
            )
        return runner(
            **{
                name: checked(
                    name,
                    _verify.conform(
                        value,
                        name,
                        details[name]["shape"].tolist(),
                        details[name]["dtype"],
                        "The argument",
                    ),
                )
                for name, value in inputs.items()
            }
        )

    return run


def _convert(model, preprocess, specs, fuse_lstm, padding, fallback):
    """Traces the model with builtin-only loops and converts it; returns the
    .tflite bytes and how each recurrent layer was lowered."""
    with tempfile.TemporaryDirectory(prefix="keras_lstm_export_") as folder:
        saved = pathlib.Path(folder) / "saved_model"
        # A bare module holding only the variables: tracking the Keras model
        # itself would also save (and trace, with dynamic shapes) its own
        # default serving function.
        module = tf.Module()
        module.keras_variables = [v.value for v in model.variables]
        if isinstance(preprocess, keras.layers.Layer):
            module.preprocess_variables = [v.value for v in preprocess.variables]
        elif isinstance(preprocess, tf.__internal__.tracking.Trackable):
            module.preprocess = preprocess  # a tf.Module's variables, tables
        serve = tf.function(
            _serving_fn(model, preprocess), input_signature=specs, autograph=False
        )
        with _lowering.lowered(
            model, fuse_lstm=fuse_lstm, padding=padding, fallback=fallback
        ) as plan:
            concrete = serve.get_concrete_function()
        if _lowering.our_rnn_layers(model) and not plan:
            raise RuntimeError(
                "None of the model's keras_lstm layers went through "
                "`inner_loop` while tracing, so none was lowered to builtin ops; "
                "keras_lstm.export relies on keras.layers.RNN.call calling it."
            )
        tf.saved_model.save(
            module, str(saved), signatures={"serving_default": concrete}
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved), signature_keys=["serving_default"]
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            content = converter.convert()
        except Exception as error:  # the converter raises ConverterError
            lines = [line for line in str(error).splitlines() if "error" in line]
            raise ValueError(
                "TFLite conversion with builtin ops only failed (a layer needs "
                "ops outside TFLite's builtins): "
                + " | ".join(lines[-5:] or [str(error)])
            ) from error
    return content, dict(plan)


def export_tflite(
    model: keras.Model,
    path: str | pathlib.Path,
    *,
    max_length: int | None = None,
    batch_size: int | None = None,
    padding: str = "right",
    fuse_lstm: bool = True,
    fallback: str = "while",
    input_signature: Sequence[tf.TensorSpec] | None = None,
    preprocess: Callable[..., Any] | None = None,
    verify_inputs: Sequence[np.ndarray] | None = None,
    overwrite: bool = False,
    verify: bool = True,
    atol: float = 1e-5,
    seed: int = 0,
) -> dict:
    """Writes a `.tflite` with builtin ops only and checks it in LiteRT.

    Shapes are static: `batch_size` rows of `max_length` steps; callers pad
    shorter sequences (with 0 for `Embedding(mask_zero=True)`, the mask value
    for `Masking`), which are then masked as in Keras. How each of our
    recurrent layers is lowered (recorded in the report under `"layers"`):

    * `keras_lstm.LSTM` with tanh/sigmoid, no `return_state`, no
      `initial_state`, unmasked or masked with `padding="right"`: one fused
      `UNIDIRECTIONAL_SEQUENCE_LSTM` op (also inside `Bidirectional`, stacked,
      with `return_sequences` and `go_backwards`). Masked steps get exactly what
      Keras gives them, provided the padding is at the end of each row.
    * Everything else (GRU: TFLite has no fused GRU; LSTM with `return_state`,
      an `initial_state`, other activations, or masks with `padding="any"`):
      the cell's builtin ops in one WHILE loop (or unrolled over the steps with
      `fallback="unroll"`), with Keras' masking rules for any mask (holes, left
      padding).

    The model is stateless between invocations: no `reset_all_variables()`
    needed (see `_lowering.fused_loop`). Do not quantize the fused model with
    `Optimize.DEFAULT`: the reset trick stores -1e30 in the LSTM kernel.

    Args:
        model: A built Keras model (TensorFlow backend).
        path: The `.tflite` file to write; the report goes to `<path>.json`.
        max_length: Steps of a variable time axis (axis 1 of the inputs
            where it is None); callers pad their sequences to this length.
        batch_size: Static batch size where the inputs' is variable (default
            1, as on a phone); must match an `Input(batch_size=...)`.
        padding: `"right"` (default; sequences are right-padded, fused LSTM for
            masked layers) or `"any"` (any mask; masked layers use `fallback`).
        fuse_lstm: Use the fused LSTM op where possible (default True).
        fallback: How the other recurrent layers loop: `"while"` (default; one
            TFLite WHILE op, size independent of `max_length`) or `"unroll"`
            (every step written out; larger, slower to convert).
        input_signature: As in `export_saved_model`; shapes are made static.
        preprocess: As in `export_saved_model` (must convert with builtins).
        verify_inputs: Extra arrays to verify on, `batch_size` rows each.
        overwrite: Replace an existing file (atomically).
        verify: Run in LiteRT and compare with Keras before installing.
        atol: Largest allowed absolute difference (float32: 1e-5).
        seed: Seed of the random verification inputs, an int in [0, 2**32).

    Returns:
        The report (also `<path>.json`): `path` (the export's name, next to
        the report), per-case and overall `max_abs_diff`, `ops` (op counts),
        `fused_lstm_ops`, `layers`, `size_bytes`, `runtime`.

    Raises:
        ValueError: Unbuilt model, a layer without a builtin lowering (e.g.
            `keras.layers.LSTM`, whose while loop needs Flex ops), a variable
            time axis without `max_length`, a layer whose batch or time size is
            not static when traced (e.g. after a `preprocess` that trims), or a
            failed builtin-only conversion.
        FileExistsError: `path` exists and `overwrite` is False.
        NotADirectoryError, IsADirectoryError: A parent of `path` is a file,
            or `path` (or `<path>.json`) is a folder.
        RuntimeError: The Keras backend is not TensorFlow.
        ExportVerificationError: LiteRT's outputs differ from Keras' by more
            than `atol`; nothing was written.

    Example:

    ```python
    from keras_lstm import export
    report = export.export_tflite(model, "saved_models/demo/model.tflite",
                                  max_length=200)
    report["fused_lstm_ops"], report["max_abs_diff"]  # e.g. (2, 3.6e-07)
    ```
    """
    _check_model(model)
    atol = _check_atol(atol)
    if padding not in ("right", "any"):
        raise ValueError(f"padding must be 'right' or 'any'; received {padding!r}.")
    if fallback not in _lowering.FALLBACKS:
        raise ValueError(
            f"fallback must be 'while' or 'unroll'; received {fallback!r}."
        )
    seed = _check_seed(seed)
    _check_flags(overwrite=overwrite, verify=verify, fuse_lstm=fuse_lstm)
    _check_tflite_layers(model)
    specs = _static_specs(_input_specs(model, input_signature), batch_size, max_length)
    given = _given_cases(verify_inputs, specs, any_rows=True, rows_of=specs[0].shape[0])
    _check_given_ids(model, specs, given, preprocess)
    if verify:
        _check_verifiable(specs, given, preprocess)
    path = _files.check_target(path, overwrite, "file")
    _build_preprocess(preprocess, given, specs)
    content, plan = _convert(model, preprocess, specs, fuse_lstm, padding, fallback)
    ops = tflite_op_names(content)
    flex = sorted({op for op in ops if op.startswith("Flex") or op == "CUSTOM"})
    if flex:
        raise ValueError(f"The converted model needs non-builtin ops {flex}.")
    report = _meta("tflite", path, specs, atol, seed)
    if preprocess is None:  # the model's own inputs: ids for `tflite_runner`
        for entry, rows in zip(report["inputs"], _verify.embedding_rows(model, specs)):
            if rows is not None:
                entry["embedding_rows"] = rows
    report.update(
        size_bytes=len(content),
        ops={op: ops.count(op) for op in sorted(set(ops))},
        fused_lstm_ops=ops.count(FUSED_LSTM_OP),
        layers=plan,
        padding=padding,
        cases=[],
    )
    with _files.staged(path) as tmp:
        tmp.write_bytes(content)
        if verify:
            report.update(
                _verify_tflite(model, preprocess, specs, tmp, given, padding, seed)
            )
        return _finish(tmp, path, report, atol, verify, model)


def _verify_tflite(model, preprocess, specs, tmp, given, padding, seed) -> dict:
    interpreter, runtime = _interpreter(tmp.read_bytes())
    run = interpreter.get_signature_runner("serving_default")
    batch, steps = specs[0].shape[0], None
    for spec in specs:
        if len(spec.shape) >= 2:
            steps = spec.shape[1]
            break
    cases = list(given)
    if preprocess is None:
        rows = batch * -(-_verify.ROWS // batch)  # whole invocations
        cases += _verify.random_cases(model, specs, rows, steps or 1, padding, seed)
    results = []
    first = None
    for name, arrays in cases:
        got = []
        for start in range(0, arrays[0].shape[0], batch):
            chunk = {s.name: a[start : start + batch] for s, a in zip(specs, arrays)}
            out = _verify.flat_numpy(run(**chunk))
            first = first or (chunk, out)
            got.append(out)
        got = [np.concatenate(parts, axis=0) for parts in zip(*got)]
        expected = _verify.keras_outputs(model, preprocess, arrays)
        results.append(
            {"case": name, "max_abs_diff": _verify.max_abs_diff(got, expected)}
        )
    # Stateless: the first invocation again gives the same outputs.
    chunk, out = first
    again = _verify.flat_numpy(run(**chunk))
    results.append(
        {
            "case": "first invocation repeated",
            "max_abs_diff": _verify.max_abs_diff(again, out),
        }
    )
    return {"runtime": runtime, "cases": results}
