"""--distribute: two logical CPU replicas, and two worker processes on localhost."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--embedding-dim", "8", "--units", "4", "--max-tokens", "500",
    "--batch-size", "32", "--steps-per-epoch", "4", "--epochs", "2",
    "--verbose", "0", "--export-dir=",
]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow", reason="tf.distribute strategies"
    ),
]


def start(args, runs_dir, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-m", "tasks.sentiment", *TINY, *args,
         "--runs-dir", str(runs_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )  # fmt: skip


def finish(process):
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]


def run_folder(runs_dir):
    (folder,) = (Path(runs_dir) / "sentiment").iterdir()
    return folder


def test_mirrored_on_two_logical_cpus_keeps_replicas_equal(tmp_path):
    mirrored = ["--distribute", "mirrored", "--cpu-replicas", "2"]
    finish(start(mirrored, tmp_path))
    metrics = json.loads((run_folder(tmp_path) / "metrics.json").read_text())
    assert metrics["replicas"] == 2
    assert metrics["replica_weight_max_diff"] == 0.0
    # Resumed once finished: best.keras loads with its optimizer state, whose
    # slots must be built inside the strategy's scope, and evaluates alike.
    finish(start([*mirrored, "--resume", "latest"], tmp_path))
    again = json.loads((run_folder(tmp_path) / "metrics.json").read_text())
    assert again["test_accuracy"] == metrics["test_accuracy"]
    assert again["replica_weight_max_diff"] == 0.0


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_worker_processes_end_with_equal_weights(tmp_path):
    import keras_lstm  # noqa: F401  (registers the layers for loading)

    workers = [f"localhost:{port}" for port in free_ports(2)]
    # Different seeds per worker: equal weights at the end then show that the
    # workers share their initial values and every update, not just a seed.
    processes = [
        start(
            ["--distribute", "multi_worker", "--seed", str(100 + i)],
            tmp_path / f"worker{i}",
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}},
        )
        for i in range(2)
    ]
    for process in processes:
        finish(process)
    folders = [run_folder(tmp_path / f"worker{i}") for i in range(2)]
    metrics = [json.loads((f / "metrics.json").read_text()) for f in folders]
    assert [m["replicas"] for m in metrics] == [2, 2]
    models = [keras.saving.load_model(f / "best.keras") for f in folders]
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert metrics[0]["test_loss"] == metrics[1]["test_loss"]
