"""Typed run configuration: one dataclass per task, turned into `--flag` options.

A task declares its options as dataclass fields with `option(default, help)`;
`parse(ConfigClass, argv)` builds an `argparse` parser from the fields (types,
defaults, choices and help text come from the declaration), validates the
values and returns the dataclass. Invalid values exit with a one-line message
naming the flag, never with a stack trace from deep inside TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
from typing import Any, Sequence, TypeVar

Config = TypeVar("Config")


class ConfigError(ValueError):
    """An option value that cannot work; the message names the flag."""


MAX_SEED = 2**32 - 1  # numpy's limit, so keras.utils.set_random_seed's


def option(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field that becomes a `--flag` with this help text."""
    return dataclasses.field(
        default=default, metadata={"help": help, "choices": choices}
    )


def new_default(base: type, name: str, default: Any) -> Any:
    """`base`'s option `name` (help, choices) with another default, for a subclass."""
    (field,) = [f for f in dataclasses.fields(base) if f.name == name]
    return dataclasses.field(default=default, metadata=field.metadata)


@dataclasses.dataclass
class TrainConfig:
    """Options every task shares. Tasks subclass it and add their own."""

    # Shared options a task refuses (its validate() says so): still parsed, so
    # the refusal names them, but left out of --help. A class attribute, not
    # a field (no annotation).
    hidden_options = ()

    rnn: str = option("lstm", "recurrent layer type", choices=("lstm", "gru"))
    cell: str = option(
        "custom",
        "custom = keras_lstm's layers; keras = keras.layers built-ins",
        choices=("custom", "keras"),
    )
    epochs: int = option(10, "maximum number of epochs")
    batch_size: int = option(64, "sequences per batch (global, over all replicas)")
    learning_rate: float = option(1e-3, "Adam learning rate")
    clipnorm: float = option(1.0, "clip each gradient to this L2 norm; 0 = off")
    lr_schedule: str = option(
        "constant",
        "constant, or cosine: decay from --learning-rate to 1/20 of it over "
        "all epochs' steps",
        choices=("constant", "cosine"),
    )
    patience: int = option(3, "early stopping: epochs without improvement")
    steps_per_epoch: int = option(0, "batches per epoch; 0 = the whole split")
    seed: int = option(1234, "seed for weights, dropout and data order")
    mixed_precision: bool = option(
        False, "mixed precision: float16 on a GPU, bfloat16 on a CPU"
    )
    distribute: str = option(
        "none",
        "none; mirrored = all local GPUs (or --cpu-replicas logical CPUs); "
        "multi_worker = workers named in TF_CONFIG (tensorflow backend)",
        choices=("none", "mirrored", "multi_worker"),
    )
    cpu_replicas: int = option(
        0, "with --distribute mirrored and no GPU: split the CPU into N devices"
    )
    tensorboard: bool = option(False, "also write TensorBoard logs to the run folder")
    runs_dir: str = option("runs", "where run folders are created")
    resume: str = option(
        "",
        "continue an interrupted run: its folder, or 'latest' for the newest one",
    )
    verbose: str = option(
        "auto", "Keras progress output", choices=("auto", "0", "1", "2")
    )

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid option."""
        for field in dataclasses.fields(self):  # as the command line refuses them
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                _fail(field.name, value, "must be a finite number")
        for name in ("epochs", "batch_size"):
            _positive(name, getattr(self, name))
        for name in ("patience", "steps_per_epoch", "cpu_replicas"):
            _non_negative(name, getattr(self, name))
        if not 0 < self.learning_rate < math.inf:
            _fail("learning_rate", self.learning_rate, "must be a finite number > 0")
        if not self.clipnorm >= 0:
            _fail("clipnorm", self.clipnorm, "must be >= 0 (0 turns clipping off)")
        if self.cpu_replicas and self.distribute != "mirrored":
            _fail("cpu_replicas", self.cpu_replicas, "needs --distribute mirrored")
        self.check_seed()

    def check_seed(self, offset: int = 0, why: str = "") -> None:
        """Raises ConfigError unless --seed and --seed + `offset` (the largest
        seed the task derives from it; `why` says how) are valid seeds."""
        if not 0 <= self.seed <= MAX_SEED - offset:
            limit = f"must be in [0, {MAX_SEED - offset}]"
            _fail("seed", self.seed, f"{limit} ({why})" if why else limit)

    def require_positive(self, *names: str) -> None:
        """Raises ConfigError for the first of these integer options below 1."""
        for name in names:
            _positive(name, getattr(self, name))

    def require_rate(self, *names: str) -> None:
        """Raises ConfigError for the first of these options outside [0, 1)
        (dropout rates)."""
        for name in names:
            value = getattr(self, name)
            if not 0 <= value < 1:
                _fail(name, value, "must be in [0, 1)")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def _fail(name: str, value: Any, why: str) -> None:
    raise ConfigError(f"--{name.replace('_', '-')}={value!r}: {why}")


def _positive(name: str, value: int) -> None:
    if value < 1:
        _fail(name, value, "must be a positive integer")


def _non_negative(name: str, value: int) -> None:
    if value < 0:
        _fail(name, value, "must be >= 0")


class _HelpFormatter(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """Defaults shown; the description (a task's docstring, with its example
    commands one per line) kept as written."""


def build_parser(
    config_class: type, description: str = "", command: str = ""
) -> argparse.ArgumentParser:
    """An argparse parser with one `--flag` per field of `config_class`;
    `command` names a subcommand (`generate`) in its usage and errors."""
    program = _program()
    parser = argparse.ArgumentParser(
        prog=f"{program} {command}" if program and command else program,
        description=description,
        formatter_class=_HelpFormatter,
    )
    add_options(parser, config_class)
    return parser


def _program() -> str | None:
    """`python -m tasks.<name>` when run that way (argparse would say
    `__main__.py`); else None, argparse's own choice."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", "") or ""
    if name.endswith(".__main__"):
        return f"python -m {name.removesuffix('.__main__')}"
    return None


def add_options(parser: argparse.ArgumentParser, config_class: type) -> None:
    """Adds one `--flag` per dataclass field to `parser` (or a subparser)."""
    hidden = getattr(config_class, "hidden_options", ())
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "")
        if field.name in hidden:
            help_text = argparse.SUPPRESS
        if field.type in (bool, "bool"):
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=field.default,
                help=help_text,
            )
            continue
        parser.add_argument(
            flag,
            dest=field.name,
            type=_TYPES[field.type],
            default=field.default,
            choices=field.metadata.get("choices"),
            help=help_text,
        )


def _finite_float(text: str) -> float:
    """A float option: nan and inf are refused (no option means them)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


_finite_float.__name__ = "float"  # argparse's "invalid float value" wording
_TYPES = {
    int: int,
    "int": int,
    float: _finite_float,
    "float": _finite_float,
    str: str,
    "str": str,
}


def from_namespace(config_class: type[Config], namespace: Any) -> Config:
    """The dataclass for parsed arguments, validated."""
    names = {f.name for f in dataclasses.fields(config_class)}
    config = config_class(**{k: v for k, v in vars(namespace).items() if k in names})
    config.validate()
    return config


def parse(
    config_class: type[Config],
    argv: Sequence[str] | None = None,
    description: str = "",
    command: str = "",
) -> Config:
    """Parses `argv` into a validated `config_class`; bad values exit(2) cleanly.

    The result's `given_options` names the options typed on the command line
    (what `--resume` compares with a run's saved options). `command`: the
    subcommand being parsed, for the usage line.
    """
    parser = build_parser(config_class, description, command)
    namespace = parser.parse_args(argv)
    try:
        config = from_namespace(config_class, namespace)
    except ValueError as error:
        parser.error(str(error))
    typed = build_parser(config_class)
    for action in typed._actions:  # options left out stay out of the result
        action.default = argparse.SUPPRESS
    config.given_options = frozenset(vars(typed.parse_args(argv)))
    return config


def parse_command(
    argv: Sequence[str],
    config_class: type,
    description: str,
    subcommands: dict[str, Any],
) -> Any:
    """A task's command line, validated: `config_class`'s options (training),
    or, when `argv` starts with a subcommand's name, what `subcommands[name]`
    makes of the rest. Imports no Keras (see `run_main`)."""
    argv = list(argv)
    if argv and argv[0] in subcommands:
        return subcommands[argv[0]](argv[1:])
    return parse(config_class, argv, description=description)


def run_main(package: str) -> None:
    """`python -m <package>`: reads the options with
    `<package>.config.parse_options` before importing `<package>.task`, which
    imports Keras (TensorFlow: seconds), so that --help and a bad value answer
    at once; then runs the task's `main`, which reads them again (cheap)."""
    argv = sys.argv[1:]
    importlib.import_module(f"{package}.config").parse_options(argv)
    # TensorFlow's C++ INFO lines ("XLA service ... initialized", ...) land in
    # the middle of Keras' progress bars; its warnings and errors still show.
    # TF_CPP_MIN_LOG_LEVEL=0 brings them back.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    importlib.import_module(f"{package}.task").main(argv)
