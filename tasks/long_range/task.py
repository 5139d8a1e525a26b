"""Long-range dependencies: can a recurrent net remember two numbers for T steps?

    python -m tasks.long_range                              # the grid in the README
    python -m tasks.long_range --lengths 400 --models lstm,simple_rnn
    python -m tasks.long_range gates "A quiet triumph." --out gates.png

The adding problem (Hochreiter & Schmidhuber, 1997): T steps of (value in [0, 1],
marker); the target is the sum of the two marked values (guessing the mean
scores MSE 0.167). SimpleRNN, our LSTM, our GRU and keras.layers.LSTM, with
about the same number of parameters, train on the same batches with the same
optimizer and step budget (SimpleRNN with a lower learning rate, its best). The
run also measures the gradient flow ||dL/dx_t|| of SimpleRNN and our LSTM
before and after training, and draws our LSTM's gates on one sequence.
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
from tasks.common import TrainConfig, option
from tasks.long_range import report
from tasks.long_range.adding import AddingBatches, adding_problem

TASK = "long_range"
MODELS = ("simple_rnn", "lstm", "gru", "keras_lstm", "keras_gru")


# Setup ------------------------------------------------------------------------


@dataclasses.dataclass
class LongRangeConfig(TrainConfig):
    """Adding-problem options; the shared ones come from TrainConfig."""

    hidden_options = ("rnn", "cell", "mixed_precision", "distribute", "cpu_replicas")

    lengths: str = option("50,100,200,400", "comma-separated sequence lengths T")
    models: str = option(
        "simple_rnn,lstm,gru,keras_lstm",
        f"comma-separated models to compare, from {', '.join(MODELS)} "
        "(lstm and gru are keras_lstm's layers)",
    )
    units: int = option(
        32, "LSTM units; the other models get the units that match its parameters"
    )
    init: str = option(
        "chrono",
        "chrono = gate biases drawn for memories up to T steps (Tallec & Ollivier "
        "2018); keras = the layers' default initializers",
        choices=("chrono", "keras"),
    )
    solved_mse: float = option(0.01, "a model has solved T when val MSE < this")
    validation_size: int = option(1000, "validation sequences per T")
    test_size: int = option(2000, "test sequences per T")
    gradient_length: int = option(
        -1,
        "T at which gradient flow is measured (one of --lengths; 0 = skip; "
        "default: 200 if in --lengths, else the longest)",
    )
    epochs: int = option(20, "step budget = epochs x steps-per-epoch")
    steps_per_epoch: int = option(100, "batches between two validations")
    batch_size: int = option(128, "fresh sequences per batch")
    learning_rate: float = option(1e-2, "Adam learning rate")
    model_learning_rates: str = option(
        "simple_rnn=1e-3",
        "per-model overrides of --learning-rate, e.g. 'simple_rnn=1e-3,gru=3e-3' "
        "('' = none); SimpleRNN stays at the plateau with 1e-2 even at T=50",
    )
    patience: int = option(
        1000, "early stopping on val_loss; default: never, the step budget decides"
    )

    def validate(self) -> None:
        super().validate()
        if self.rnn != "lstm" or self.cell != "custom":
            raise common.ConfigError(
                "--rnn/--cell: this task compares layers; use --models"
            )
        if self.mixed_precision or self.distribute != "none":
            # Small float32 models on one device; the options would be ignored.
            raise common.ConfigError(
                "--mixed-precision/--distribute: not supported by this task "
                "(small float32 models on one device)"
            )
        if self.steps_per_epoch < 1:
            raise common.ConfigError(
                f"--steps-per-epoch={self.steps_per_epoch}: must be >= 1"
            )
        lengths, models = self.length_list(), self.model_list()
        if not lengths or min(lengths) < 2:
            raise common.ConfigError(
                f"--lengths={self.lengths!r}: integers >= 2, e.g. 50,100"
            )
        if len(set(lengths)) < len(lengths):
            raise common.ConfigError(
                f"--lengths={self.lengths!r}: each T once (a T repeats)"
            )
        if not self.solved_mse > 0:
            raise common.ConfigError(
                f"--solved-mse={self.solved_mse}: must be > 0 (a validation MSE "
                "below it counts as solved)"
            )
        self.check_seed(2, "the test set is drawn with --seed + 2")
        unknown = sorted(set(models) - set(MODELS))
        if not models or unknown:
            raise common.ConfigError(f"--models={self.models!r}: choose from {MODELS}")
        for name in ("units", "validation_size", "test_size"):
            if getattr(self, name) < 1:
                raise common.ConfigError(f"--{name.replace('_', '-')}: must be >= 1")
        self.learning_rate_for("lstm")  # checks --model-learning-rates
        if self.gradient_length < -1:
            raise common.ConfigError(
                f"--gradient-length={self.gradient_length}: a T from --lengths, "
                "or 0 to skip the gradient-flow plot"
            )
        if self.gradient_length == -1:  # the default: whatever the grid allows
            return
        if self.gradient_length and not {"simple_rnn", "lstm"} & set(models):
            raise common.ConfigError(
                f"--gradient-length={self.gradient_length}: the plot shows "
                "simple_rnn and lstm, and --models has neither; use 0 to skip it"
            )
        if self.gradient_length and self.gradient_length not in lengths:
            raise common.ConfigError(
                f"--gradient-length={self.gradient_length}: not in --lengths "
                f"({self.lengths}); use 0 to skip the gradient-flow plot"
            )

    def learning_rate_for(self, model: str) -> float:
        """--learning-rate, or the model's entry in --model-learning-rates."""
        try:
            pairs = dict(
                p.split("=") for p in self.model_learning_rates.split(",") if p
            )
            rates = {k.strip(): float(v) for k, v in pairs.items()}
        except ValueError:
            raise common.ConfigError(
                f"--model-learning-rates={self.model_learning_rates!r}: "
                "write model=rate pairs, e.g. simple_rnn=1e-3"
            ) from None
        unknown = sorted(set(rates) - set(MODELS))
        if unknown or not all(r > 0 for r in rates.values()):
            raise common.ConfigError(
                f"--model-learning-rates={self.model_learning_rates!r}: "
                f"models from {MODELS}, rates > 0"
            )
        return rates.get(model, self.learning_rate)

    def gradient_flow_length(self) -> int:
        """The T of the gradient-flow plot (0: none): `--gradient-length`, or
        by default 200 if in --lengths, else the longest; none by default
        when --models has neither simple_rnn nor lstm (the plot shows them)."""
        if self.gradient_length >= 0:
            return self.gradient_length
        if not {"simple_rnn", "lstm"} & set(self.model_list()):
            return 0
        lengths = self.length_list()
        return 200 if 200 in lengths else max(lengths)

    def length_list(self) -> list[int]:
        try:
            return [int(v) for v in self.lengths.split(",") if v.strip()]
        except ValueError:
            raise common.ConfigError(
                f"--lengths={self.lengths!r}: not integers"
            ) from None

    def model_list(self) -> list[str]:
        return [v.strip() for v in self.models.split(",") if v.strip()]


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
    config = common.parse(LongRangeConfig, argv, description=__doc__)
    try:
        config, run = common.start_run(TASK, config)
    except common.ConfigError as error:
        sys.exit(f"error: {error}")
    start = time.perf_counter()
    try:
        results = run_grid(config, run)
    except KeyboardInterrupt:
        sys.exit(common.INTERRUPTED)
    table = write_report(config, run, results, time.perf_counter() - start)
    print(f"\n{table}\n\nrun folder: {run.path}")
