"""Export the character model and its one-step generator; generate from them.

`saved_models/text_generation/` holds:

- `model.keras` (the full-sequence model) and `vocabulary.json`;
- on the TensorFlow backend, the one-step generator `(char, h, c) -> (logits,
  h, c)` as a SavedModel (`generator/`) and as a builtin-only
  `generator.tflite`, both written and verified by `keras_lstm.export`
  (reports beside them).

Then the same seeded sample is drawn through Keras, the SavedModel and LiteRT;
the texts must be identical (`export_report.json`). The folder is built next
to its final place and swapped in, so an old export is never half-replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from tasks import common
from tasks.text_generation import data, sampling

# The sample every export is checked on (Keras vs SavedModel vs LiteRT).
CHECK = dict(length=200, temperature=1.0, top_k=None, seed=0)


def write(model, vocabulary: list[str], out_dir: Path) -> dict:
    """Writes `out_dir` atomically (`tasks.common.atomic_dir`); returns the
    verification report."""
    with common.atomic_dir(out_dir, "text_generation") as folder:
        return _write_into(folder, model, vocabulary)


def _check_text(step, states, vocabulary) -> str:
    ids = sampling.generate(
        step, states, [], start_id=data.start_id(vocabulary), **CHECK
    )
    return data.decode(ids, vocabulary)


def _write_into(folder: Path, model, vocabulary: list[str]) -> dict:
    ids = np.random.default_rng(0).integers(1, len(vocabulary), (4, 50))
    expected = keras.ops.convert_to_numpy(model(ids, training=False))
    model.save(folder / "model.keras")
    (folder / "vocabulary.json").write_text(json.dumps(vocabulary))
    reloaded = keras.saving.load_model(folder / "model.keras")
    got = keras.ops.convert_to_numpy(reloaded(ids, training=False))
    step_model = sampling.state_model(model, steps=1)
    keras_text = _check_text(
        sampling.keras_step(step_model), sampling.zero_states(step_model), vocabulary
    )
    report = {
        "keras_reload_max_abs_diff": float(np.max(np.abs(got - expected))),
        "check_sample": {**CHECK, "keras_text": keras_text},
    }
    if keras.backend.backend() == "tensorflow":
        report.update(_write_tensorflow_exports(folder, step_model, vocabulary))
        for runtime in ("saved_model", "tflite"):
            if report[f"{runtime}_text"] != keras_text:
                raise RuntimeError(
                    f"export check failed: the {runtime} generator's seeded sample "
                    "differs from the Keras one"
                )
    else:
        report["saved_model"] = "skipped: needs KERAS_BACKEND=tensorflow"
        report["tflite"] = "skipped: needs KERAS_BACKEND=tensorflow"
    if not report["keras_reload_max_abs_diff"] <= 1e-5:  # NaN fails too
        raise RuntimeError("export check failed: model.keras reloads differently")
    (folder / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _write_tensorflow_exports(folder: Path, step_model, vocabulary) -> dict:
    """generator/ and generator.tflite, verified by keras_lstm.export on random
    characters and states, then on a seeded sample."""
    import tensorflow as tf

    from keras_lstm import export

    names = [spec.name for spec in step_model.inputs[1:]]
    zeros = sampling.zero_states(step_model)
    saved = export.export_saved_model(step_model, folder / "generator")
    serve = tf.saved_model.load(str(folder / "generator")).signatures["serving_default"]
    lite = export.export_tflite(step_model, folder / "generator.tflite")
    run = export.tflite_runner(folder / "generator.tflite")
    return {
        "saved_model_max_abs_diff": saved["max_abs_diff"],
        "tflite_max_abs_diff": lite["max_abs_diff"],
        "tflite_ops": sorted(set(export.tflite_op_names(folder / "generator.tflite"))),
        "saved_model_text": _check_text(
            sampling.signature_step(serve, names), zeros, vocabulary
        ),
        "tflite_text": _check_text(
            sampling.signature_step(run, names), zeros, vocabulary
        ),
    }


def generate(
    model_dir: str | Path,
    prompt: str,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    unknown: str = "error",
    runtime: str = "keras",
) -> str:
    """The prompt and `length` sampled characters, from an export folder.

    Args:
        model_dir: an export folder (`saved_models/text_generation`).
        prompt: where to start; characters outside the vocabulary raise a
            ValueError naming them (`unknown="error"`) or are read as the
            unknown character (`unknown="replace"`). An empty prompt starts
            after a newline.
        length, temperature, top_k, seed: see `sampling.generate`.
        runtime: `"keras"` (model.keras) or `"tflite"` (generator.tflite in
            LiteRT; same text for the same seed).
    """
    import keras_lstm  # noqa: F401  (registers our layers for loading)

    model_dir = Path(model_dir)
    needed = model_dir / ("model.keras" if runtime == "keras" else "generator.tflite")
    if not needed.is_file():
        if (model_dir / "model.keras").is_file():  # an export made on jax or torch
            raise FileNotFoundError(
                f"{needed} is missing: only exports made on the TensorFlow backend "
                "have one; use --runtime keras, or export again on TensorFlow"
            )
        raise FileNotFoundError(
            f"no trained model at {needed}: train one with "
            "`python -m tasks.text_generation` (or pass --model-dir)"
        )
    common.check_export_of(model_dir, "text_generation")
    if not (model_dir / "vocabulary.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} is not a text_generation export: it has no "
            "vocabulary.json (another task's export?)"
        )
    vocabulary = common.read_export_json(
        model_dir / "vocabulary.json",
        f"a character vocabulary ([{data.UNKNOWN!r}, one-character strings...])",
        lambda v: (
            isinstance(v, list)
            and v[:1] == [data.UNKNOWN]
            and all(isinstance(c, str) and len(c) == 1 for c in v[1:])
        ),
    )
    prompt_ids = data.encode(prompt, vocabulary, unknown)
    if runtime == "keras":
        model = common.load_export_model(needed)
        common.check_vocabulary_fits(model, vocabulary, model_dir)
        step_model = sampling.state_model(model, steps=1)
        step, states = sampling.keras_step(step_model), sampling.zero_states(step_model)
    else:
        from keras_lstm import export

        inputs = common.read_export_json(
            needed.with_name(needed.name + ".json"),
            "the export report of generator.tflite (its inputs)",
            _lists_state_inputs,
        )
        specs = inputs["inputs"][1:]
        try:
            runner = export.tflite_runner(needed)
        except ValueError as error:  # LiteRT: "not a valid Flatbuffer buffer"
            raise ValueError(
                f"{needed} cannot be loaded by LiteRT ({error}): a damaged or "
                "half-copied export? Export it again"
            ) from None
        step = sampling.signature_step(runner, [s["name"] for s in specs])
        states = {s["name"]: np.zeros(s["shape"], "float32") for s in specs}
    ids = sampling.generate(
        step,
        states,
        prompt_ids,
        length,
        temperature,
        top_k,
        seed,
        start_id=data.start_id(vocabulary),
    )
    return prompt + data.decode(ids, vocabulary)


def _lists_state_inputs(report) -> bool:
    """Whether an export report lists the generator's inputs (the char id,
    then the states), each with a name and shape."""
    inputs = report.get("inputs") if isinstance(report, dict) else None
    return (
        isinstance(inputs, list)
        and len(inputs) > 1
        and all(isinstance(s, dict) and {"name", "shape"} <= set(s) for s in inputs)
    )
