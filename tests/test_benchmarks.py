"""benchmarks/bench_layers.py runs as the GPU machine runs it: jax backend, no
TensorFlow (issue 8 point 2). Short of a GPU, this is what keeps a broken
harness from costing a lent card's minutes: it runs the script on this CPU
with TensorFlow unimportable, and checks its figures against each other."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# As on the GPU machine: importing tensorflow fails (None in sys.modules).
WITHOUT_TENSORFLOW = """
import runpy, sys
sys.modules["tensorflow"] = None
sys.path.insert(0, "benchmarks")
sys.argv = ["benchmarks/bench_layers.py", *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_bench_layers_runs_on_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    argv = ["--rnn", "lstm", "--shapes", "weather", "--contenders", "ours"]
    argv += ["keras", "torch", "--repeats", "2", "--batches", "2"]
    argv += ["--tag", "smoke", "--out", str(tmp_path)]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "jax-cpu-lstm-smoke.json").read_text())
    assert report["backend"] == "jax"
    assert [(r["rnn"], r["shape"]) for r in report["results"]] == [("lstm", "weather")]
    for result in report["results"]:
        assert result["errors"] == {}
        all_ms = result["all_ms"]
        for name in ("ours", "keras", "torch"):
            for mode in ("train", "infer"):
                key = f"{name}_{mode}"
                repeats = all_ms[key]
                assert len(repeats) == 2 and min(repeats) > 0, key
                # the median of two repeats is their mean
                assert result["ms_per_batch"][key] == pytest.approx(
                    sum(repeats) / 2, abs=1e-3
                )
                rows_per_s = 1000 * result["batch"] / result["ms_per_batch"][key]
                assert result["sequences_per_s"][key] == pytest.approx(
                    rows_per_s, rel=1e-3
                )
        for mode in ("train", "infer"):
            ours, keras = all_ms[f"ours_{mode}"], all_ms[f"keras_{mode}"]
            ratios = result["ratios"][f"ours/keras_{mode}"]
            pairs = sorted(a / b for a, b in zip(ours, keras))
            assert ratios["paired"] == pytest.approx(sum(pairs) / 2, abs=2e-3)
            assert ratios["of_bests"] == pytest.approx(min(ours) / min(keras), abs=2e-3)
    table = (tmp_path / "jax-cpu-lstm-smoke.md").read_text()
    assert "backend `jax`" in table
    assert sum(line.startswith("| LSTM | weather") for line in table.splitlines()) == 3
