"""Export the sentiment model: .keras + vocabulary, raw-string SavedModel, .tflite.

The export folder is built next to its final place and swapped in at the end,
so an existing export is never left half-overwritten. Every artifact is
reloaded and compared with the in-memory model; the differences go into
export_report.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from keras_lstm import twins
from tasks.common import atomic_dir
from tasks.common.float32 import float32_copy
from tasks.sentiment import text

# Edge cases the exported model must agree on, beyond ordinary reviews.
CHECK_TEXTS = [
    "",
    "   ",
    "A quiet triumph: funny, warm and wise.",
    "Dull, overlong and badly acted!!!",
    "Un film très réussi — naïve but charming, 10/10 ★★★★",
    "ЖЖЖ 日本語 emoji 🎬 mixed with words",
]


def _check_texts(vocabulary: list[str], length: int, seed: int = 0) -> list[str]:
    """The edge cases, plus random word salads (one longer than the cap)."""
    rng = np.random.default_rng(seed)
    words = vocabulary[2:] or ["word"]
    salads = [
        " ".join(rng.choice(words, size=n)) for n in (1, 5, length // 2, length * 3)
    ]
    return CHECK_TEXTS + salads


def write(model, vocabulary: list[str], length: int, out_dir: Path) -> dict:
    """Writes `out_dir` atomically; returns the verification report."""
    with atomic_dir(out_dir, "sentiment") as folder:
        return _write_into(folder, model, vocabulary, length)


def _write_into(folder: Path, model, vocabulary, length) -> dict:
    texts = _check_texts(vocabulary, length)
    ids = text.encode(texts, vocabulary, length)
    expected = np.asarray(model.predict(ids, verbose=0)).reshape(-1)

    model.save(folder / "model.keras")
    (folder / "vocabulary.json").write_text(json.dumps(vocabulary))
    reloaded = keras.saving.load_model(folder / "model.keras")
    got = np.asarray(reloaded.predict(ids, verbose=0)).reshape(-1)
    report = {
        "texts_checked": len(texts),
        "keras_reload_max_abs_diff": float(np.max(np.abs(got - expected))),
    }
    if keras.backend.backend() == "tensorflow":
        # The SavedModel and .tflite compute in float32 (TFLite's recurrent ops
        # do): from a float32 copy when the model was trained mixed precision.
        served = float32_copy(model)
        if served is not model:
            report["exported_float32_copy_of"] = model.dtype_policy.name
            expected = np.asarray(served.predict(ids, verbose=0)).reshape(-1)
        # --cell keras: the built-ins' loop needs Flex ops in TFLite.
        twin = twins.replace_builtins(served)
        if twin is not served:
            report["exported_keras_lstm_twins_of"] = twins.builtin_rnns(served)
            got = np.asarray(twin.predict(ids, verbose=0)).reshape(-1)
            report["keras_lstm_twins_max_abs_diff"] = float(
                np.max(np.abs(got - expected))
            )
            served = twin
        report.update(_write_tensorflow_exports(folder, served, vocabulary, length))
        report["saved_model_vs_python_tokenizer_max_abs_diff"] = _serve_texts(
            folder / "saved_model", texts, expected
        )
    else:
        report["saved_model"] = "skipped: needs KERAS_BACKEND=tensorflow"
        report["tflite"] = "skipped: needs KERAS_BACKEND=tensorflow"
    for key, value in report.items():
        if key.endswith("max_abs_diff") and not value <= 1e-5:  # NaN fails too
            raise RuntimeError(f"export check failed: {key} = {value:.3g} > 1e-5")
    (folder / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _write_tensorflow_exports(folder: Path, model, vocabulary, length) -> dict:
    """saved_model/ (raw strings in) and model.tflite (token ids in), verified by
    keras_lstm.export, which writes their reports next to them."""
    import tensorflow as tf

    from keras_lstm import export

    class Tokenizer(tf.Module):
        """Raw strings -> padded token ids, as `text.encode` does."""

        def __init__(self):
            super().__init__()
            self.table = text.tf_vocabulary_table(vocabulary)

        def __call__(self, texts):
            return text.tf_token_ids(texts, self.table, length)

    texts = np.array(_check_texts(vocabulary, length), dtype=object)
    saved = export.export_saved_model(
        model,
        folder / "saved_model",
        input_signature=[tf.TensorSpec((None,), tf.string, name="text")],
        preprocess=Tokenizer(),
        verify_inputs=[texts],
    )
    lite = export.export_tflite(model, folder / "model.tflite", max_length=length)
    return {
        "saved_model_max_abs_diff": saved["max_abs_diff"],
        "tflite_max_abs_diff": lite["max_abs_diff"],
        "tflite_ops": sorted(set(export.tflite_op_names(folder / "model.tflite"))),
    }


def _serve_texts(path: Path, texts: list[str], expected: np.ndarray) -> float:
    """Raw strings through the reloaded SavedModel vs the Python-tokenized model."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = serve(text=tf.constant(texts))["output_0"].numpy().reshape(-1)
    return float(np.max(np.abs(got - expected)))
