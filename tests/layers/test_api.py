"""Drop-in compatibility: same constructor, defaults, call signature and weight
layout as keras.layers.LSTM / GRU; documented equations; no backend imports."""

import ast
import doctest
import inspect
import pathlib

import keras
import pytest

import keras_lstm
import keras_lstm.gru as gru_module
import keras_lstm.lstm as lstm_module

PAIRS = [
    (keras_lstm.LSTM, keras.layers.LSTM),
    (keras_lstm.GRU, keras.layers.GRU),
    (keras_lstm.LSTMCell, keras.layers.LSTMCell),
    (keras_lstm.GRUCell, keras.layers.GRUCell),
]


def parameters(fn):
    return [
        (p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
    ]


@pytest.mark.parametrize("ours,builtin", PAIRS, ids=lambda c: c.__name__)
def test_same_constructor_and_call_signature(ours, builtin):
    assert parameters(ours.__init__) == parameters(builtin.__init__)
    assert parameters(ours.call) == parameters(builtin.call)


@pytest.mark.parametrize("ours,builtin", PAIRS[:2], ids=lambda c: c.__name__)
def test_same_weight_names_shapes_and_attributes(ours, builtin):
    a, b = ours(6, return_sequences=True), builtin(6, return_sequences=True)
    a.build((2, 3, 5))
    b.build((2, 3, 5))
    assert [(w.path.split("/", 1)[1], w.shape) for w in a.weights] == [
        (w.path.split("/", 1)[1], w.shape) for w in b.weights
    ]
    missing = {n for n in dir(b) if not n.startswith("_")} - set(dir(a))
    assert missing == set()


def test_cell_docstring_gives_the_gate_equations():
    doc = keras_lstm.LSTMCell.__doc__
    for equation in [
        "f_t  = σ(",
        "i_t  = σ(",
        "C̃_t  = tanh(",
        "C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t",
        "o_t  = σ(",
        "h_t  = o_t ⊙ tanh(C_t)",
    ]:
        assert equation in doc


def test_library_imports_no_backend():
    """keras.ops only: the package never imports tensorflow, jax or torch."""
    banned = {"tensorflow", "jax", "torch"}
    package = pathlib.Path(keras_lstm.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"


@pytest.mark.parametrize("module", [lstm_module, gru_module], ids=["lstm", "gru"])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module)
    assert tried > 0
    assert failures == 0


def test_the_equality_check_command(capsys):
    """`python -m keras_lstm`: --help answers (it ran the check instead), the
    check passes and prints a row per case, a bad option is refused."""
    from keras_lstm import __main__ as command

    with pytest.raises(SystemExit) as info:
        command.main(["--help"])
    assert info.value.code == 0
    assert "usage: python -m keras_lstm" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        command.main(["--units", "3"])
    assert info.value.code == 2
    if keras.backend.backend() == "tensorflow":  # the same layers as elsewhere
        assert command.main([]) == 0
        out = capsys.readouterr().out
        assert "OK: equal within 1e-5" in out
        assert all(name in out for name, _, _ in command.CASES)
