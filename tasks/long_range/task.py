"""The long-range task: the adding-problem grid, gradient flow, report.

Its options and usage: tasks/long_range/config.py.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Sequence

import keras
import numpy as np

import keras_lstm
from tasks import common
from tasks.long_range import report
from tasks.long_range.adding import AddingBatches, adding_problem
from tasks.long_range.config import LongRangeConfig, parse_options

TASK = "long_range"


# Data -------------------------------------------------------------------------


def load_data(config: LongRangeConfig, length: int) -> dict:
    """Training batches (fresh each step) and fixed validation and test sets."""
    return {
        "train": AddingBatches(
            length, config.batch_size, config.steps_per_epoch, seed=config.seed
        ),
        "validation": adding_problem(config.validation_size, length, config.seed + 1),
        "test": adding_problem(config.test_size, length, config.seed + 2),
    }


def probe_batch(data: dict) -> tuple:
    """The first 100 test sequences: where gradients and gates are measured."""
    return data["test"][0][:100], data["test"][1][:100]


# Model ------------------------------------------------------------------------


def recurrent_parameters(name: str, units: int, features: int = 2) -> int:
    """Weights of the recurrent layer plus the Dense(1) head."""
    per_gate = units * (features + units)
    body = {
        "simple_rnn": per_gate + units,
        "lstm": 4 * (per_gate + units),
        "gru": 3 * per_gate + 6 * units,  # reset_after: two biases
    }[name.removeprefix("keras_")]
    return body + units + 1


def matched_units(name: str, lstm_units: int) -> int:
    """The units that give `name` about the parameter count of the LSTM."""
    target = recurrent_parameters("lstm", lstm_units)
    return min(
        range(1, 8 * lstm_units),
        key=lambda u: abs(recurrent_parameters(name, u) - target),
    )


def chrono_initialize(layer, length: int, seed: int) -> None:
    """Chrono initialization (Tallec & Ollivier, 2018): forget-gate biases
    log(U(1, T - 1)) so each unit starts with a memory of up to T steps; the
    LSTM input gate gets the opposite bias. For the GRU the update gate z
    (which keeps the state in Keras' convention) gets the forget bias."""
    rng = np.random.default_rng(seed)
    weights = layer.get_weights()
    units = weights[1].shape[0]
    memory = np.log(rng.uniform(1, max(length - 1, 2), units))
    bias = weights[2]
    if isinstance(layer, (keras_lstm.LSTM, keras.layers.LSTM)):
        bias[units : 2 * units] = memory  # f
        bias[:units] = -memory  # i
    else:
        bias[..., :units] = 0.0
        bias[0, :units] = memory  # z, input bias row
    layer.set_weights([*weights[:2], bias])


def build_model(
    config: LongRangeConfig, name: str, length: int, steps_per_epoch: int | None = None
) -> keras.Model:
    """(T, 2) -> recurrent layer -> Dense(1), compiled with MSE (`steps_per_epoch`
    is what `--lr-schedule cosine` needs)."""
    units = matched_units(name, config.units)
    layer = {
        "simple_rnn": keras.layers.SimpleRNN,
        "lstm": keras_lstm.LSTM,
        "gru": keras_lstm.GRU,
        "keras_lstm": keras.layers.LSTM,
        "keras_gru": keras.layers.GRU,
    }[name](units, name=name)
    model = keras.Sequential(
        [keras.Input((length, 2)), layer, keras.layers.Dense(1)],
        name=f"{name}_T{length}",
    )
    if config.init == "chrono" and name != "simple_rnn":
        chrono_initialize(layer, length, config.seed)
    rate = config.learning_rate_for(name)
    model.compile(
        optimizer=common.optimizer(
            dataclasses.replace(config, learning_rate=rate), steps_per_epoch
        ),
        loss="mse",
    )
    return model


# Train and evaluate -----------------------------------------------------------


class StopWhenSolved(keras.callbacks.Callback):
    """Stops training at the first validation with val_loss < `threshold`."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("val_loss", np.inf) < self.threshold:
            self.model.stop_training = True

    def stopped_before(self, past_rows) -> bool:
        """Whether a resumed run's past epochs were already solved."""
        return any(float(row["val_loss"]) < self.threshold for row in past_rows)


def train_one(config, run, name: str, length: int, data: dict) -> dict:
    """Trains one model at one T in its own sub-folder; returns its results."""
    folder = common.RunFolder(run.path / f"T{length}-{name}")
    if folder.metrics.exists():  # a resumed run keeps what it finished
        done = common.read_json(folder.metrics)
        if done["test_mse"] is None:  # a diverged model's NaN, stored as null
            done["test_mse"] = float("nan")
        return done
    common.seed_everything(config.seed)
    model = build_model(config, name, length, len(data["train"]))
    probe = probe_batch(data)
    norms_init = keras_lstm.gradient_norms(model, *probe, loss="mse")
    solved = StopWhenSolved(config.solved_mse)
    start = time.perf_counter()
    try:
        history = common.fit(
            model,
            data["train"],
            data["validation"],
            config,
            folder,
            extra_callbacks=[solved],
        )
    except common.training.TrainingDiverged:  # a result here: "nan, not solved"
        history = common.read_history(folder.history)
    seconds = time.perf_counter() - start
    test = common.ArrayBatches(*data["test"], batch_size=500)
    val = history["val_loss"]
    solved_epoch = next((e for e, v in enumerate(val) if v < config.solved_mse), -1)
    result = {
        "model": name,
        "length": length,
        "units": matched_units(name, config.units),
        "parameters": model.count_params(),
        "learning_rate": config.learning_rate_for(name),
        "init": "keras" if name == "simple_rnn" else config.init,
        "test_mse": common.evaluate(model, test)["loss"],
        "steps_to_solve": (solved_epoch + 1) * config.steps_per_epoch or None,  # 0: no
        "steps_run": len(val) * config.steps_per_epoch,
        "val_mse": val,
        "train_seconds_this_session": round(seconds, 1),
        "gradient_norms_init": norms_init.tolist(),
        "gradient_norms_trained": keras_lstm.gradient_norms(model, *probe).tolist(),
    }
    common.save_metrics(folder, result)
    if name == "lstm":
        gates = keras_lstm.record_gates(model.get_layer("lstm"), probe[0][:1])
        keras_lstm.plot_gates(
            gates,
            str(folder.path / "gates.png"),
            inputs=probe[0][:1],
            input_labels=["value", "marker"],
            title=f"our LSTM after training on the adding problem, T={length}",
        )
    return result


def keras_init_norms(config: LongRangeConfig, length: int, data: dict) -> list:
    """||dL/dx_t|| of our LSTM with the Keras default initializers (untrained),
    to set beside the chrono-initialised one in the gradient-flow plot."""
    common.seed_everything(config.seed)
    untrained = dataclasses.replace(config, init="keras", lr_schedule="constant")
    model = build_model(untrained, "lstm", length)
    return keras_lstm.gradient_norms(model, *probe_batch(data)).tolist()


def run_grid(config: LongRangeConfig, run) -> list[dict]:
    results = []
    for length in config.length_list():
        data = load_data(config, length)
        for name in config.model_list():
            print(f"\n=== T={length} {name}", flush=True)
            results.append(train_one(config, run, name, length, data))
            print(report.summary_line(results[-1], config.solved_mse), flush=True)
            if name == "lstm" and length == config.gradient_flow_length():
                if config.init == "chrono":
                    norms = keras_init_norms(config, length, data)
                    results[-1]["gradient_norms_keras_init"] = norms
    return results


# Report -----------------------------------------------------------------------


def write_report(config: LongRangeConfig, run, results: list[dict], seconds: float):
    metrics = {
        "results": results,
        "grid_seconds_this_session": round(seconds, 1),
        "constant_guess_mse": 2 / 12,
        "backend": keras.backend.backend(),
        "device": common.accelerator(),
        "device_name": common.device_name(),
    }
    common.save_metrics(run, metrics)
    table = report.results_table(results, config)
    with common.atomic_path(run.path / "results.md") as tmp:
        tmp.write_text(table + "\n")
    report.plot_curves(results, config, run.path / "val_mse.png")
    if config.gradient_flow_length():
        report.plot_gradient_flow(results, config.gradient_flow_length(), run.path)
    return table


# Command line -----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gates"]:
        from tasks.long_range import sentiment_gates

        return sentiment_gates.main(argv[1:])
    table, run = common.run_training(train, parse_options(argv))
    print(f"\n{table}\n\nrun folder: {run.path}")


def train(config: LongRangeConfig) -> tuple[str, common.RunFolder]:
    """The whole grid in a new run folder (or the one `--resume` names);
    returns the results table and the folder."""
    config, run = common.start_run(TASK, config)
    start = time.perf_counter()
    results = run_grid(config, run)
    return write_report(config, run, results, time.perf_counter() - start), run
