"""Generation: a one-step model that carries (h, c), and a seeded sampler.

The trained model reads whole windows. `state_model` builds, from its weights,
a model that takes the recurrent states as inputs and returns them as outputs:

    (char ids (batch, steps), h, c) -> (logits, h, c)

with `h` and `c` of shape (batch, layers, units) (a GRU has no `c`). With
`steps=1` it is the one-step generator: each character costs one step, the
prompt is read once, and nothing is re-run. It is stateless (states in,
states out), so the same model exports to SavedModel and TFLite. Its layers
are always `keras_lstm` layers (also for `--cell keras`: same weight layout),
in float32.

`generate` samples from softmax(logits / temperature), optionally limited to
the `top_k` most likely characters, with one `np.random.default_rng(seed)`
draw per character, so a seed fixes the text for any backend or runtime that
gives the same logits (Keras or LiteRT).
"""

from __future__ import annotations

import inspect
from typing import Callable

import keras
import numpy as np

import keras_lstm
from tasks.text_generation.config import check_sampling

# A step function: (char ids (1, 1), states) -> (logits (1, vocabulary), states).
StepFunction = Callable[[np.ndarray, dict], tuple[np.ndarray, dict]]


def recurrent_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's recurrent layers, input to output."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]


def state_names(model: keras.Model) -> list[str]:
    """`["h", "c"]` for an LSTM model, `["h"]` for a GRU model."""
    first = recurrent_layers(model)[0]
    return ["h", "c"] if "LSTM" in type(first).__name__ else ["h"]


def _our_copy(layer: keras.layers.RNN) -> keras.layers.RNN:
    """A keras_lstm layer with `layer`'s configuration that returns its states."""
    cls = keras_lstm.LSTM if "LSTM" in type(layer).__name__ else keras_lstm.GRU
    accepted = inspect.signature(cls.__init__).parameters
    config = {k: v for k, v in layer.get_config().items() if k in accepted}
    config.update(
        return_sequences=True,
        return_state=True,
        dropout=0.0,
        recurrent_dropout=0.0,
        stateful=False,
        dtype="float32",
    )
    config.pop("name", None)
    return cls(**config)


def state_model(
    model: keras.Model, steps: int | None = 1, batch_size: int | None = None
) -> keras.Model:
    """The trained `model` with its recurrent states as inputs and outputs.

    Args:
        model: a model from `task.build_model` (trained or not).
        steps: characters per call; 1 for the generator, None for any length.
        batch_size: a fixed batch size, or None.

    Returns:
        A float32 Keras model `[ids, h(, c)] -> [logits, h(, c)]`; logits have
        shape (batch, vocabulary) when `steps == 1`, else (batch, steps,
        vocabulary). Weights are copied from `model`.
    """
    rnns = recurrent_layers(model)
    embedding = model.get_layer("embedding")
    dense = model.get_layer("logits")
    names, units = state_names(model), rnns[0].units
    ids = keras.Input((steps,), batch_size, dtype="int32", name="char")
    states = [
        keras.Input((len(rnns), units), batch_size, "float32", name=n) for n in names
    ]
    new_embedding = keras.layers.Embedding(
        embedding.input_dim, embedding.output_dim, dtype="float32", name="embedding"
    )
    x = new_embedding(ids)
    outputs: dict[str, list] = {name: [] for name in names}
    copies = []
    for depth, layer in enumerate(rnns):
        copy = _our_copy(layer)
        copies.append(copy)
        initial = [state[:, depth, :] for state in states]
        x, *final = copy(x, initial_state=initial if len(initial) > 1 else initial[0])
        for name, tensor in zip(names, final):
            outputs[name].append(tensor)
    new_dense = keras.layers.Dense(dense.units, dtype="float32", name="logits")
    logits = new_dense(x)
    if steps == 1:
        logits = keras.layers.Reshape((dense.units,), dtype="float32", name="last")(
            logits
        )
    stacked = [keras.ops.stack(outputs[name], axis=1) for name in names]
    result = keras.Model([ids, *states], [logits, *stacked], name="state_model")
    new_embedding.set_weights(embedding.get_weights())
    for copy, layer in zip(copies, rnns):
        copy.set_weights(layer.get_weights())
    new_dense.set_weights(dense.get_weights())
    return result


def zero_states(model: keras.Model, batch: int = 1) -> dict[str, np.ndarray]:
    """All-zero states for a `state_model`."""
    return {
        spec.name: np.zeros((batch, *spec.shape[1:]), "float32")
        for spec in model.inputs[1:]
    }


def keras_step(model: keras.Model) -> StepFunction:
    """A step function running the one-step Keras model (compiled once)."""
    names = [spec.name for spec in model.inputs[1:]]

    def step(char: np.ndarray, states: dict) -> tuple[np.ndarray, dict]:
        outputs = model.predict_on_batch([char, *(states[n] for n in names)])
        return outputs[0], dict(zip(names, outputs[1:]))

    return step


def signature_step(run: Callable[..., dict], names: list[str]) -> StepFunction:
    """A step function calling an exported signature: a LiteRT signature runner
    or a SavedModel's `serving_default` (outputs `output_0`, `output_1`, ...)."""

    def step(char: np.ndarray, states: dict) -> tuple[np.ndarray, dict]:
        out = run(char=char.astype("int32"), **states)
        order = sorted(out, key=lambda key: int(key.rsplit("_", 1)[-1]))
        values = [np.asarray(out[key]) for key in order]
        return values[0], dict(zip(names, values[1:]))

    return step


def sample(
    logits: np.ndarray,
    rng: np.random.Generator,
    temperature: float,
    top_k: int | None = None,
) -> int:
    """One character id from softmax(logits / temperature), in float64.

    The unknown id 0 is never drawn. With `top_k`, only the k most likely
    characters can be drawn. Exactly one `rng.random()` per call.
    """
    z = np.asarray(logits, dtype="float64").reshape(-1) / temperature
    z[0] = -np.inf
    if top_k is not None and top_k < z.size - 1:
        z[z < np.sort(z)[-top_k]] = -np.inf
    p = np.exp(z - z.max())
    cdf = np.cumsum(p / p.sum())
    return int(min(np.searchsorted(cdf, rng.random(), side="right"), z.size - 1))


def generate(
    step: StepFunction,
    states: dict[str, np.ndarray],
    prompt_ids: np.ndarray,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    start_id: int = 0,
) -> list[int]:
    """`length` sampled ids after the prompt, carrying the states step by step.

    Args:
        step: `keras_step(...)` or `signature_step(...)`.
        states: the states to start from (zeros: `zero_states`).
        prompt_ids: the prompt's ids; each goes through one step.
        length: how many ids to sample.
        temperature: > 0; below 1 sharpens, above 1 flattens.
        top_k: sample only among the k most likely characters (None = all).
        seed: seeds `np.random.default_rng`.
        start_id: fed first when the prompt is empty.
    """
    check_sampling(length, temperature, top_k)
    rng = np.random.default_rng(seed)
    fed = list(prompt_ids) or [start_id]
    logits = None
    for char in fed:
        logits, states = step(np.array([[char]], "int32"), states)
    out = []
    for _ in range(length):
        char = sample(logits, rng, temperature, top_k)
        out.append(char)
        logits, states = step(np.array([[char]], "int32"), states)
    return out


def streamed_cross_entropy(
    model: keras.Model, ids: np.ndarray, streams: int = 32, chunk: int = 256
) -> tuple[float, int]:
    """Mean cross-entropy (nats/char) of a whole held-out text, full context.

    The text is cut into `streams` contiguous pieces read side by side in
    chunks, the states carried from chunk to chunk: every character is
    predicted from everything before it in its piece (the first character of
    each piece is not scored). Returns (nats per character, characters scored).
    `model` is a `state_model(..., steps=None)`.
    """
    per = (len(ids) - 1) // streams
    if per < 1:
        raise ValueError(f"text of {len(ids)} characters is too short to score")
    x = ids[: streams * per].reshape(streams, per)
    y = ids[1 : streams * per + 1].reshape(streams, per)
    states = zero_states(model, streams)
    names = list(states)
    total = 0.0
    for start in range(0, per, chunk):
        logits, *new = model.predict_on_batch(
            [x[:, start : start + chunk], *states.values()]
        )
        states = dict(zip(names, new))
        logits = logits.astype("float64")
        peak = logits.max(axis=-1, keepdims=True)
        log_z = peak[..., 0] + np.log(np.exp(logits - peak).sum(axis=-1))
        target = np.take_along_axis(logits, y[:, start : start + chunk, None], -1)
        total += float(np.sum(log_z - target[..., 0]))
    return total / (streams * per), streams * per
