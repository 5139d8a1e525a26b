"""Speed (and peak memory) of keras_lstm layers vs the Keras built-ins and PyTorch.

Trains with `fit` and infers with `predict` over many batches, after a warm-up
call that pays for tracing/compilation, and reports the median time per batch over
repeats. All contenders are timed back to back in every repeat (the order reversed
every other repeat), so their ratios are taken under the same machine load.

Contenders (`--contenders`):
  ours        keras_lstm.LSTM / GRU as shipped (use_cudnn="auto": fast paths on;
              hoist_input_projection="auto": hoisted on a jax GPU)
  keras       keras.layers.LSTM / GRU as shipped
  torch       PyTorch nn.LSTM / nn.GRU + nn.Linear, a plain PyTorch training loop
              (Adam, MSE) and a no_grad inference loop over the same batches;
              denormals flushed to zero, as TensorFlow does
  reference   ours with use_cudnn=False and hoist_input_projection=False: the
              keras.ops cell in Keras' loop, one step at a time
  hoist       reference with hoist_input_projection=True
  unroll      ours with unroll=True
  jit         ours, model compiled with jit_compile=True (XLA on tensorflow)
  pallas      ours with KERAS_LSTM_PALLAS=1 (jax on a GPU: the opt-in Pallas
              kernels of keras_lstm/fused/jax_pallas.py, LSTM only); where
              the kernels decline the layer its row says "not run"

    KERAS_BACKEND=tensorflow python benchmarks/bench_layers.py
    KERAS_BACKEND=jax python benchmarks/bench_layers.py --shapes imdb --rnn lstm gru

Input (`--input`): on the tensorflow backend fit/predict get a tf.data.Dataset of
whole batches built once before the timing, as the PyTorch loop slices its array
without a copy; with numpy arrays Keras slices and copies every batch, which cost
5-6 ms of a 64x200x128 batch here whatever the layer (benchmarks/NOTES.md).
`--input numpy` times that path; jax and torch get numpy (no TensorFlow needed).

Writes <out>/<backend>-<device>-<rnn>[-<tag>].json and .md (a markdown table).
Runs wherever Keras runs: TensorFlow is not needed on the jax/torch backends, and
torch is optional (the `torch` contender is skipped when it is not installed).
`--memory` also measures each contender's peak memory in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import machine  # noqa: E402  (benchmarks/ is on the path)
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402

# name: (batch, timesteps, features, units, batches per timing) from DESIGN.md
SHAPES = {
    "imdb": (64, 200, 128, 64, 16),
    "chargen": (64, 100, 256, 1024, 4),
    "weather": (256, 120, 14, 32, 16),
}
LAYERS = {
    "lstm": (keras_lstm.LSTM, keras.layers.LSTM),
    "gru": (keras_lstm.GRU, keras.layers.GRU),
}
CONTENDERS = ("ours", "keras", "torch", "reference", "hoist", "unroll", "jit", "pallas")
RESULTS = pathlib.Path(__file__).parent / "results"


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get(
                "device_name", "GPU"
            )
    return cpu_name()


def backend_version() -> str:
    name = keras.backend.backend()
    module = __import__(name)
    return f"{name} {getattr(module, '__version__', '?')}"


def cpu_name() -> str:
    return f"{machine.cpu_name()}, {os.cpu_count()} cores"


class KerasContender:
    """A Keras model `Input -> RNN -> Dense(1)` timed with fit / predict."""

    def __init__(self, name, rnn, timesteps, features, units, batch, feed="numpy"):
        ours_cls, builtin_cls = LAYERS[rnn]
        # Keras' default: jax always jit-compiles, TensorFlow uses tf.function
        # (XLA only on a GPU), torch runs eagerly. jit_compile=False would make
        # jax run op by op, which is what an earlier GPU run measured by mistake.
        jit = "auto"
        if name == "keras":
            layer = builtin_cls(units)
        elif name in ("reference", "hoist"):
            layer = ours_cls(units, use_cudnn=False)
            layer.hoist_input_projection = name == "hoist"
        elif name == "unroll":
            layer = ours_cls(units, unroll=True)
        else:  # ours, jit, pallas
            layer = ours_cls(units)
            if name == "jit":
                jit = True
        self.model = keras.Sequential(
            [keras.Input((timesteps, features)), layer, keras.layers.Dense(1)]
        )
        self.model.compile(
            optimizer="adam",
            loss="mse",
            jit_compile=jit,
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        self.batch = batch
        self.feed = feed
        self._datasets = {}
        # The engine reads KERAS_LSTM_PALLAS when fit/predict trace the model.
        self.env = {"KERAS_LSTM_PALLAS": "1" if name == "pallas" else ""}
        if name == "pallas":
            check_pallas_runs(layer, batch, timesteps, features)

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def _dataset(self, *arrays):
        """`--input dataset`: the arrays as a tf.data.Dataset of whole batches,
        built once (as the PyTorch loop slices its arrays without copying)."""
        key = tuple(id(a) for a in arrays)
        if key not in self._datasets:
            import tensorflow as tf

            batched = [a.reshape(-1, self.batch, *a.shape[1:]) for a in arrays]
            dataset = tf.data.Dataset.from_tensor_slices(tuple(batched))
            # Nothing to tune in memory, and tf.data's autotuning thread stalled
            # 55-638 ms when `fit` dropped its iterator, in 8 of 20 calls (none
            # of 40 with it off): up to 40 ms per batch of a 16-batch timing
            # (benchmarks/NOTES.md, section 14).
            options = tf.data.Options()
            options.autotune.enabled = False
            self._datasets[key] = dataset.with_options(options)
        return self._datasets[key]

    def train(self, x, y):
        os.environ.update(self.env)
        if self.feed == "dataset":
            self.model.fit(self._dataset(x, y), epochs=1, shuffle=False, verbose=0)
            return
        self.model.fit(x, y, batch_size=self.batch, epochs=1, shuffle=False, verbose=0)

    def infer(self, x):
        os.environ.update(self.env)
        if self.feed == "dataset":
            return self.model.predict(self._dataset(x), verbose=0)
        return self.model.predict(x, batch_size=self.batch, verbose=0)


def check_pallas_runs(layer, batch, timesteps, features) -> None:
    """Raises unless the Pallas engine takes this layer here, so the "pallas"
    row never times the plain engine under the kernel's name."""
    if keras.backend.backend() != "jax":
        raise RuntimeError("not run: the Pallas kernels need KERAS_BACKEND=jax")
    import jax
    import jax.numpy as jnp

    from keras_lstm.fused import jax_pallas

    previous = os.environ.get("KERAS_LSTM_PALLAS")
    os.environ["KERAS_LSTM_PALLAS"] = "1"
    try:
        probe = jnp.zeros((batch, timesteps, features), "float32")
        taken = jax_pallas.select(layer, probe, None, training=True)
    finally:
        if previous is None:
            del os.environ["KERAS_LSTM_PALLAS"]
        else:
            os.environ["KERAS_LSTM_PALLAS"] = previous
    if taken is None:
        raise RuntimeError(
            f"not run: keras_lstm.fused.jax_pallas declines this layer here "
            f"(jax on {jax.default_backend()}, {layer.cell.units} units; the "
            "kernels need a GPU and 16-64 units, a power of two, LSTM only)"
        )


class TorchContender:
    """PyTorch nn.LSTM / nn.GRU + nn.Linear: the peer the issue compares with."""

    def __init__(self, rnn, features, units, batch, weights):
        import torch

        # TensorFlow flushes denormal floats to zero; PyTorch on a CPU does not
        # by default, and a GRU's vanishing gradients then hit slow denormal
        # arithmetic (imdb GRU train 316 ms per batch instead of 65). Same
        # treatment for both, so the table compares kernels.
        torch.set_flush_denormal(True)
        self.torch = torch
        self.device = torch_device()
        cls = torch.nn.LSTM if rnn == "lstm" else torch.nn.GRU
        self.rnn = cls(features, units, batch_first=True).to(self.device)
        self.head = torch.nn.Linear(units, 1).to(self.device)
        if weights is not None:
            self._load(rnn, weights)
        params = list(self.rnn.parameters()) + list(self.head.parameters())
        self.optimizer = torch.optim.Adam(params, lr=1e-3)
        self.batch = batch

    def _load(self, rnn, weights):
        """Same start as the Keras contenders (weights from keras_lstm)."""
        torch = self.torch
        kernel, recurrent, bias, dense_w, dense_b = weights

        def gates(w):
            if rnn == "lstm":
                return w
            z, r, h = np.split(w, 3, axis=-1)
            return np.concatenate([r, z, h], axis=-1)

        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.tensor(gates(kernel).T))
            self.rnn.weight_hh_l0.copy_(torch.tensor(gates(recurrent).T))
            if rnn == "lstm":
                self.rnn.bias_ih_l0.copy_(torch.tensor(bias))
                self.rnn.bias_hh_l0.zero_()
            else:
                self.rnn.bias_ih_l0.copy_(torch.tensor(gates(bias[0])))
                self.rnn.bias_hh_l0.copy_(torch.tensor(gates(bias[1])))
            self.head.weight.copy_(torch.tensor(dense_w.T))
            self.head.bias.copy_(torch.tensor(dense_b))

    def _forward(self, xb):
        out = self.rnn(xb)[0][:, -1]
        return self.head(out)

    def train(self, x, y):
        torch = self.torch
        self.rnn.train()
        for start in range(0, len(x), self.batch):
            xb = torch.from_numpy(x[start : start + self.batch]).to(self.device)
            yb = torch.from_numpy(y[start : start + self.batch]).to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(self._forward(xb), yb)
            loss.backward()
            self.optimizer.step()
        float(loss.detach())  # waits for the device, as fit does

    def infer(self, x):
        torch = self.torch
        self.rnn.eval()
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), self.batch):
                xb = torch.from_numpy(x[start : start + self.batch]).to(self.device)
                outs.append(self._forward(xb))
        return torch.cat(outs).cpu().numpy()


def make_contender(name, rnn, shape, weights=None, feed="numpy"):
    batch, timesteps, features, units, _ = SHAPES[shape]
    if name == "torch":
        return TorchContender(rnn, features, units, batch, weights)
    contender = KerasContender(name, rnn, timesteps, features, units, batch, feed)
    if weights is not None:
        contender.set_weights(weights)
    return contender


def data(shape):
    batch, timesteps, features, _, batches = SHAPES[shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * batches, timesteps, features)).astype("float32")
    y = rng.standard_normal((batch * batches, 1)).astype("float32")
    return x, y


def time_per_batch(fn, batches: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / batches * 1000.0


def ratios(times: dict, a: str, b: str, kind: str) -> dict:
    """a / b three ways: median over back-to-back pairs, of medians, of bests."""
    ta, tb = times[(a, kind)], times[(b, kind)]
    return {
        "paired": round(statistics.median(x / y for x, y in zip(ta, tb)), 3),
        "of_medians": round(statistics.median(ta) / statistics.median(tb), 3),
        "of_bests": round(min(ta) / min(tb), 3),
    }


TORCH_THREADS = None  # --torch-threads, also passed to the memory children
STEPS_PER_EXECUTION = 1  # --steps-per-execution, also passed to them


def measure_memory(rnn, shape, name, feed) -> dict:
    """Peak memory of one contender, in a fresh process (see `--memory`)."""
    cmd = [sys.executable, __file__, "--memory-of", rnn, shape, name]
    cmd += ["--batches", str(SHAPES[shape][4]), "--input", feed]
    if TORCH_THREADS:  # the child sets them as the timed run does
        cmd += ["--torch-threads", str(TORCH_THREADS)]
    cmd += ["--steps-per-execution", str(STEPS_PER_EXECUTION)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as error:  # noqa: BLE001 - one failure must not stop the run
        return {"error": repr(error)[:300]}


def _rss_peak_kib(reset: bool = False):
    """The process' peak resident memory (VmHWM, KiB); `reset` restarts it
    (Linux: writing 5 to /proc/self/clear_refs). None where unavailable."""
    try:
        if reset:
            pathlib.Path("/proc/self/clear_refs").write_text("5")
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_child(rnn, shape, name, feed) -> None:
    """Runs in the subprocess: fit + predict twice, prints the peaks as JSON.

    Host: the RSS once imports, data and the built model are in (every child
    loads the active Keras backend, so the torch contender's includes it too:
    compare growth across frameworks, not peaks), then the peak RSS growth
    during the first fit + predict (tracing and compiling included) and during
    a second one (steady state). Device: the allocator's peak over both
    (torch CUDA, or JAX's peak_bytes_in_use, which in a fresh process is this
    contender's)."""
    x, y = data(shape)
    contender = make_contender(name, rnn, shape, feed=feed)
    uses_torch = name == "torch" or keras.backend.backend() == "torch"
    if uses_torch:  # only then: importing torch would add its runtime's RSS
        import torch

        if TORCH_THREADS:
            torch.set_num_threads(TORCH_THREADS)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    growth, peaks = [], []
    start = None
    for _ in range(2):
        before = _rss_peak_kib(reset=True)
        start = before if start is None else start
        contender.train(x, y)
        contender.infer(x)
        after = _rss_peak_kib()
        growth.append(None if None in (before, after) else (after - before) / 1024)
        peaks.append(after)
    after = None if None in peaks else max(peaks)
    device_peak = None
    if uses_torch:
        if torch.cuda.is_available():
            device_peak = torch.cuda.max_memory_allocated()
    elif keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        device_peak = stats.get("peak_bytes_in_use")

    def mib(value, scale=1.0):
        return None if value is None else round(value / scale, 1)

    print(
        json.dumps(
            {
                "host_rss_start_mib": mib(start, 1024),
                "host_peak_rss_mib": mib(after, 1024),
                "host_rss_growth_mib": mib(growth[0]),
                "host_rss_growth_steady_mib": mib(growth[1]),
                "device_peak_mib": mib(device_peak, 2**20),
            }
        )
    )


def bench_shape(rnn, shape, contenders, repeats: int, memory: bool, feed: str):
    batch, timesteps, features, units, batches = SHAPES[shape]
    x, y = data(shape)
    models, errors = {}, {}
    weights = None
    for name in contenders:
        try:
            models[name] = make_contender(name, rnn, shape, weights, feed)
            if weights is None and name != "torch":
                weights = models[name].model.get_weights()
                for other in models.values():  # a torch one made before
                    if other is not models[name] and isinstance(other, TorchContender):
                        other._load(rnn, weights)
            # Warm-up: tracing / compilation, and one full pass of each kind.
            models[name].train(x, y)
            models[name].infer(x)
        except Exception as error:  # noqa: BLE001 - keep the other contenders
            errors[name] = repr(error)[:300]
            models.pop(name, None)
            print(f"# {rnn} {shape} {name} failed: {errors[name]}", flush=True)

    times = {(name, kind): [] for name in models for kind in ("train", "infer")}
    for repeat in range(repeats):
        order = list(models.items())[:: 1 if repeat % 2 == 0 else -1]
        for kind in ("train", "infer"):
            for name, model in order:
                run = model.train if kind == "train" else model.infer
                args = (x, y) if kind == "train" else (x,)
                try:
                    times[(name, kind)].append(
                        time_per_batch(lambda: run(*args), batches)
                    )
                except Exception as error:  # noqa: BLE001
                    errors[f"{name}_{kind}"] = repr(error)[:300]
    times = {key: v for key, v in times.items() if len(v) == repeats}
    names = sorted({n for n, _ in times}, key=list(contenders).index)

    result = {
        "rnn": rnn,
        "shape": shape,
        "batch": batch,
        "timesteps": timesteps,
        "features": features,
        "units": units,
        "batches_per_timing": batches,
        "repeats": repeats,
        "contenders": names,
        "ms_per_batch": {
            f"{n}_{k}": round(statistics.median(v), 3) for (n, k), v in times.items()
        },
        "sequences_per_s": {
            f"{n}_{k}": round(batch / statistics.median(v) * 1000.0, 1)
            for (n, k), v in times.items()
        },
        "ratios": {},
        "all_ms": {f"{n}_{k}": [round(t, 3) for t in v] for (n, k), v in times.items()},
        "errors": errors,
    }
    for base in ("keras", "torch"):
        for name in names:
            if name == base or base not in names:
                continue
            for kind in ("train", "infer"):
                if (name, kind) in times and (base, kind) in times:
                    result["ratios"][f"{name}/{base}_{kind}"] = ratios(
                        times, name, base, kind
                    )
    if memory:
        result["memory"] = {
            name: measure_memory(rnn, shape, name, feed) for name in names
        }
    return result


def fmt_ratio(result, name, base, kind) -> str:
    r = result["ratios"].get(f"{name}/{base}_{kind}")
    if r is None:
        return "–"
    return f"**{r['paired']}** ({r['of_medians']}, {r['of_bests']})"


def markdown(report: dict) -> str:
    lines = [
        f"{report['date']} · backend `{report['backend']}` · {report['device']} · "
        f"Keras {report['keras']} · {report.get('backend_version', '')}"
        + (f" · torch {report['torch']}" if report.get("torch") else "")
        + f" · input {report.get('input', 'numpy')}"
        + (
            f" · steps_per_execution {report['steps_per_execution']}"
            if report.get("steps_per_execution", 1) > 1
            else ""
        )
        + (
            f" · TF_CPU_ALLOCATOR_USE_BFC={report['tf_cpu_allocator_use_bfc']}"
            if report.get("tf_cpu_allocator_use_bfc") is not None
            else ""
        ),
        "",
        "| layer | shape (batch, steps, features→units) | contender | train ms | "
        "infer ms | infer seq/s | train vs keras | infer vs keras | train vs "
        "torch | infer vs torch |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        ms, sps = r["ms_per_batch"], r["sequences_per_s"]
        shape = (
            f"{r['shape']} ({r['batch']}, {r['timesteps']}, "
            f"{r['features']}→{r['units']})"
        )
        for name in r["contenders"]:
            lines.append(
                f"| {r['rnn'].upper()} | {shape} | {name} | "
                f"{ms.get(name + '_train', '–')} | {ms.get(name + '_infer', '–')} | "
                f"{sps.get(name + '_infer', '–')} | "
                f"{fmt_ratio(r, name, 'keras', 'train')} | "
                f"{fmt_ratio(r, name, 'keras', 'infer')} | "
                f"{fmt_ratio(r, name, 'torch', 'train')} | "
                f"{fmt_ratio(r, name, 'torch', 'infer')} |"
            )
        for name, error in r["errors"].items():
            lines.append(
                f"| {r['rnn'].upper()} | {shape} | {name} | failed: "
                f"`{error[:80]}` | | | | | | |"
            )
    lines += [
        "",
        "Milliseconds per batch (median over repeats). Ratios: contender / "
        "baseline (< 1: contender faster); in bold the median over back-to-back "
        "pairs, in brackets the ratio of medians and the ratio of best repeats.",
    ]
    if any("memory" in r for r in report["results"]):
        lines += [
            "",
            "Memory, each contender in a fresh process: host RSS once the model "
            "is built (the active Keras backend's runtime included, for PyTorch "
            "too), its growth during the first fit + predict (tracing and "
            "compiling included) and during a second one (steady state), the "
            "peak RSS, and the device allocator's peak.",
            "",
            "| layer | shape | contender | host RSS at start MiB | growth, first "
            "fit+predict MiB | growth, second MiB | host peak RSS MiB | "
            "device peak MiB |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in report["results"]:
            for name, mem in r.get("memory", {}).items():
                cells = [
                    mem.get(key)
                    for key in (
                        "host_rss_start_mib",
                        "host_rss_growth_mib",
                        "host_rss_growth_steady_mib",
                        "host_peak_rss_mib",
                        "device_peak_mib",
                    )
                ]
                lines.append(
                    f"| {r['rnn'].upper()} | {r['shape']} | {name} | "
                    + " | ".join("–" if c is None else str(c) for c in cells)
                    + " |"
                )
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--rnn", nargs="+", choices=LAYERS, default=["lstm"])
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=CONTENDERS,
        default=["ours", "keras", "torch"],
        help="what to time (see the module docstring); 'keras' is the baseline",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats")
    parser.add_argument(
        "--batches", type=int, default=None, help="override batches per timing"
    )
    parser.add_argument(
        "--input",
        choices=("auto", "numpy", "dataset"),
        default="auto",
        help="how fit/predict get the batches: numpy arrays (Keras slices and "
        "copies them every batch) or a tf.data.Dataset of whole batches built "
        "once; auto: dataset on the tensorflow backend, numpy elsewhere",
    )
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="Keras' compile(steps_per_execution=...): batches per call of the "
        "compiled train/test/predict function",
    )
    parser.add_argument("--memory", action="store_true", help="peak memory too")
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--memory-of", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batches:
        for name, shape in SHAPES.items():
            SHAPES[name] = (*shape[:4], args.batches)
    feed = args.input
    if feed == "auto":
        feed = "dataset" if keras.backend.backend() == "tensorflow" else "numpy"
    global TORCH_THREADS, STEPS_PER_EXECUTION
    TORCH_THREADS = args.torch_threads
    if args.steps_per_execution < 1:
        parser.error(
            f"--steps-per-execution must be >= 1, got {args.steps_per_execution}"
        )
    STEPS_PER_EXECUTION = args.steps_per_execution
    if args.memory_of:
        memory_child(*args.memory_of, feed)
        return
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    contenders = list(dict.fromkeys(args.contenders))
    if "torch" in contenders and not torch_available():
        print("# torch is not installed: skipping the torch contender")
        contenders.remove("torch")
    torch_version = None
    if "torch" in contenders:
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        torch_version = f"{torch.__version__} ({torch_device()}"
        if torch_device() == "cpu":
            torch_version += f", {torch.get_num_threads()} threads"
        torch_version += ")"

    keras.utils.set_random_seed(0)
    command = ["KERAS_BACKEND=" + keras.backend.backend()]
    allocator = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC")
    if allocator is not None:  # TensorFlow's CPU allocator (NOTES section 24)
        command.append(f"TF_CPU_ALLOCATOR_USE_BFC={allocator}")
    command.append("python")
    command += ["benchmarks/bench_layers.py", *sys.argv[1:]]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "backend": keras.backend.backend(),
        "device": device_name(),
        "cpu": cpu_name(),
        "keras": keras.__version__,
        "backend_version": backend_version(),
        "torch": torch_version,
        "command": " ".join(command),
        "input": feed,
        "steps_per_execution": STEPS_PER_EXECUTION,
        "tf_cpu_allocator_use_bfc": allocator,
        "results": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if report["device"] == report["cpu"] else "gpu"
    stem = f"{report['backend']}-{device}-{'-'.join(args.rnn)}"
    if args.tag:
        stem += f"-{args.tag}"
    for rnn in args.rnn:
        for shape in args.shapes:
            result = bench_shape(
                rnn, shape, contenders, args.repeats, args.memory, feed
            )
            print(json.dumps({k: v for k, v in result.items() if k != "all_ms"}))
            report["results"].append(result)
            # Written after every shape: a run cut short keeps what it measured.
            report["load_average"] = os.getloadavg()
            (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
            (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
