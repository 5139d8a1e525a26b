"""Bad input gets a ValueError naming the argument and the value received."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import BUILTIN, OURS

KINDS = ["lstm", "gru"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True, None])
def test_units(kind, units):
    with pytest.raises(ValueError, match=rf"`units`.*units={units!r}"):
        OURS[kind](units)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value", [-0.1, 1.0001, 1.5, "0.2", True])
def test_dropout_rates(kind, name, value):
    # keras.layers.LSTM clips -0.1 and 1.5 into [0, 1]; we raise on purpose.
    with pytest.raises(
        ValueError, match=rf"`{name}` must be a float in \[0, 1\].*{name}={value!r}"
    ):
        OURS[kind](4, **{name: value})


@pytest.mark.parametrize("kind", KINDS)
def test_use_cudnn(kind):
    with pytest.raises(ValueError, match=r"`use_cudnn`.*use_cudnn='yes'"):
        OURS[kind](4, use_cudnn="yes")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "value", [1, 0, 1.0, np.True_, np.False_, "auto", 2, "yes", None, np.array([1, 1])]
)
def test_use_cudnn_accepts_what_the_builtin_accepts(kind, value):
    """The built-in checks `use_cudnn not in ("auto", True, False)`, so 1 and
    np.True_ pass; ours takes them too, kept as the plain value they equal
    (a config with np.True_ would not save as JSON)."""
    try:
        BUILTIN[kind](4, use_cudnn=value)
    except ValueError:
        with pytest.raises(ValueError, match=r"`use_cudnn` must be one of"):
            OURS[kind](4, use_cudnn=value)
        return
    layer = OURS[kind](4, use_cudnn=value)
    assert type(layer.use_cudnn) is (str if value == "auto" else bool)
    assert layer.use_cudnn == value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5)])
def test_input_rank(kind, shape):
    layer = OURS[kind](4)
    with pytest.raises(ValueError, match=r"`sequences` of rank 3.*" + str(shape)):
        layer(np.zeros(shape, "float32"))
    assert not layer.built  # nothing was built from the bad shape


@pytest.mark.parametrize("kind", KINDS)
def test_rank_checked_after_build(kind):
    layer = OURS[kind](4)
    layer(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match=r"rank 3.*\(2, 5\)"):
        layer(np.zeros((2, 5), "float32"))


@pytest.mark.parametrize("kind", KINDS)
def test_feature_size_changes_after_build(kind):
    layer = OURS[kind](4)
    layer(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match=r"5 features.*has 7.*\(2, 3, 7\)"):
        layer(np.zeros((2, 3, 7), "float32"))


@pytest.mark.parametrize("kind", KINDS)
def test_sequences_without_timesteps(kind):
    """Keras' loop (ours and the built-in's) failed reading step 0: a
    StridedSlice or IndexError that named no argument."""
    with pytest.raises(ValueError, match=r"at least one timestep.*\(2, 0, 5\)"):
        OURS[kind](4)(np.zeros((2, 0, 5), "float32"))
    with pytest.raises(ValueError, match=r"at least one timestep.*\(None, 0, 5\)"):
        OURS[kind](4)(keras.Input((0, 5)))


def test_initial_state_count():
    x = np.zeros((2, 3, 5), "float32")
    h = np.zeros((2, 4), "float32")
    with pytest.raises(ValueError, match=r"`initial_state`.*2 tensor\(s\).*Received 1"):
        OURS["lstm"](4)(x, initial_state=[h])
    with pytest.raises(ValueError, match=r"`initial_state`.*1 tensor\(s\).*Received 2"):
        OURS["gru"](4)(x, initial_state=[h, h])


@pytest.mark.parametrize("kind", KINDS)
def test_symbolic_initial_state_is_checked_when_the_model_is_built(kind):
    """On keras.Input, Keras runs `compute_output_shape`, not `call`: a wrong
    initial state was accepted there and refused only at the first predict
    (the built-in's then fails inside a matmul)."""
    x = keras.Input((3, 5))
    count = 2 if kind == "lstm" else 1
    with pytest.raises(ValueError, match=r"shape \(None, 4\).*\(None, 5\)"):
        OURS[kind](4)(x, initial_state=[keras.Input((5,))] * count)
    with pytest.raises(ValueError, match=rf"{count} tensor\(s\).*Received 3"):
        OURS[kind](4)(x, initial_state=[keras.Input((4,))] * 3)
    states = [keras.Input((4,))] * count
    outputs = OURS[kind](4, return_state=True)(x, initial_state=states)
    assert [tuple(t.shape) for t in outputs] == [(None, 4)] * (count + 1)
    bare = OURS[kind](4)(x, initial_state=states[0] if count == 1 else states)
    assert tuple(bare.shape) == (None, 4)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state_shape", [(2, 5), (3, 4), (2, 4, 1)])
def test_initial_state_shape(kind, state_shape):
    x = np.zeros((2, 3, 5), "float32")
    count = 2 if kind == "lstm" else 1
    states = [np.zeros(state_shape, "float32")] * count
    with pytest.raises(
        ValueError, match=r"`initial_state`.*\(2, 4\).*" + str(state_shape)
    ):
        OURS[kind](4)(x, initial_state=states)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask_shape", [(2, 4), (3, 3), (2, 3, 2), (2, 4, 1), (2,)])
def test_mask_shape(kind, mask_shape):
    x = np.zeros((2, 3, 5), "float32")
    with pytest.raises(ValueError, match=r"`mask`.*\(2, 3\).*" + str(mask_shape)):
        OURS[kind](4)(x, mask=np.ones(mask_shape, bool))
