"""Export the weather model: model.keras + the statistics `predict` needs.

The folder is built next to its final place and swapped in whole
(`tasks.common.atomic_dir`), so an existing export is never half-overwritten;
the reloaded model is compared with the trained one on random windows. On the
tensorflow backend the folder also gets a SavedModel (`saved_model/`) and a
builtin-only `model.tflite`, both written and verified by `keras_lstm.export`
(reports next to them).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from keras_lstm import twins
from tasks import common
from tasks.common.float32 import float32_copy


def write(model: keras.Model, stats: dict, out_dir: Path) -> dict:
    """Writes `out_dir` atomically; returns the largest reload difference."""
    shape = (4, stats["lookback"], len(stats["inputs"]))
    probe = np.random.default_rng(0).normal(size=shape).astype("float32")
    with common.atomic_dir(out_dir, "weather") as folder:
        model.save(folder / "model.keras")
        (folder / "normalization.json").write_text(json.dumps(stats, indent=2))
        reloaded = keras.saving.load_model(folder / "model.keras")
        expected = model.predict(probe, verbose=0)
        diff = np.max(np.abs(reloaded.predict(probe, verbose=0) - expected))
        if not diff <= 1e-5:  # raising inside atomic_dir: nothing is replaced
            raise RuntimeError(
                f"export check failed: model.keras reloads {diff:.3g} off (> 1e-5)"
            )
        report = {"dir": str(out_dir), "keras_max_abs_diff": float(diff)}
        if keras.backend.backend() == "tensorflow":
            from keras_lstm import export

            # In float32 (TFLite's recurrent ops are), also after --mixed-precision.
            served = float32_copy(model)
            if served is not model:
                report["exported_float32_copy_of"] = model.dtype_policy.name
            # --cell keras: the built-ins' loop needs Flex ops in TFLite.
            twin = twins.replace_builtins(served)
            if twin is not served:
                report["exported_keras_lstm_twins_of"] = twins.builtin_rnns(served)
                want = served.predict(probe, verbose=0)
                diff = np.max(np.abs(twin.predict(probe, verbose=0) - want))
                if not diff <= 1e-5:
                    raise RuntimeError(
                        f"export check failed: the keras_lstm copy is {diff:.3g} "
                        "off (> 1e-5)"
                    )
                report["keras_lstm_twins_max_abs_diff"] = float(diff)
                served = twin
            saved = export.export_saved_model(served, folder / "saved_model")
            lite = export.export_tflite(served, folder / "model.tflite")
            report["saved_model_max_abs_diff"] = saved["max_abs_diff"]
            report["tflite_max_abs_diff"] = lite["max_abs_diff"]
            report["tflite_ops"] = sorted(
                set(export.tflite_op_names(folder / "model.tflite"))
            )
    return report


def load_exported(model_dir: str | Path) -> tuple[keras.Model, dict]:
    """(model, stats) from an export folder."""
    import keras_lstm  # noqa: F401  (registers our layers for loading)

    model_path = Path(model_dir) / "model.keras"
    if not model_path.is_file():
        raise FileNotFoundError(
            f"no trained model at {model_path}: train one with "
            "`python -m tasks.weather` (or pass --model-dir)"
        )
    common.check_export_of(model_dir, "weather")
    if not (Path(model_dir) / "normalization.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} is not a weather export: it has no normalization.json "
            "(another task's export?)"
        )
    stats = common.read_export_json(
        Path(model_dir) / "normalization.json",
        "the normalization statistics (" + ", ".join(STATS_KEYS) + ")",
        _has_stats,
    )
    return common.load_export_model(model_path), stats


# What `predict` reads from normalization.json, and the type of each.
STATS_KEYS = {
    "stations": list, "features": list, "mean": list, "std": list,
    "target_scale": list, "lookback": int, "horizons": list,
}  # fmt: skip


def _has_stats(stats) -> bool:
    return (
        isinstance(stats, dict)
        and all(isinstance(stats.get(k), kind) for k, kind in STATS_KEYS.items())
        and len(stats["mean"]) == len(stats["std"])
        and stats["lookback"] > 0
    )
