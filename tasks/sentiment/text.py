"""Tokenizer and vocabulary for the sentiment task, in plain Python.

Training never needs TensorFlow for its input: text becomes integer ids here,
so the task trains on the tensorflow, jax and torch backends alike. The
exported SavedModel takes raw strings and repeats these exact steps with
`tf.strings` ops (`tf_token_ids`); a test checks both give the same ids.

Tokens: lowercase the text; a token is a run of ASCII letters, digits and
apostrophes, or any other single non-space character (punctuation, and each
non-ASCII character on its own). Id 0 pads, id 1 is any word not in the
vocabulary. A review with no tokens at all (an empty string) is read as one
unknown word, so that every review has at least one unmasked step.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable, Sequence

import numpy as np

PAD, UNKNOWN = "", "[UNK]"
SPACE = " \t\n\r\f\v"  # spelled out: Python's \s and RE2's \s differ
WORD = "a-z0-9'"
TOKEN = re.compile(f"[{WORD}]+|[^{WORD}{SPACE}]")


def tokenize(text: str) -> list[str]:
    """Splits one review into tokens.

    >>> tokenize("It's a MUST-see, 10/10!")
    ["it's", 'a', 'must', '-', 'see', ',', '10', '/', '10', '!']
    """
    return TOKEN.findall(text.lower())


def build_vocabulary(
    texts: Iterable[str], max_tokens: int, min_count: int = 1
) -> list[str]:
    """Padding, [UNK], then the most frequent tokens (ties broken alphabetically).

    Args:
        texts: the training texts only.
        max_tokens: vocabulary size including padding and [UNK].
        min_count: leave out tokens seen fewer times than this.
    """
    counts = collections.Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(
        (token for token, n in counts.items() if n >= min_count),
        key=lambda token: (-counts[token], token),
    )
    return [PAD, UNKNOWN] + ranked[: max(max_tokens - 2, 0)]


def encode(texts: Sequence[str], vocabulary: Sequence[str], length: int) -> np.ndarray:
    """Token ids (len(texts), length): right-padded with 0, cut to `length`."""
    index = {token: i for i, token in enumerate(vocabulary)}
    ids = np.zeros((len(texts), length), dtype="int32")
    for row, text in enumerate(texts):
        tokens = [index.get(token, 1) for token in tokenize(text)][:length] or [1]
        ids[row, : len(tokens)] = tokens
    return ids


def length_cap(texts: Iterable[str], percentile: float) -> int:
    """The token count at `percentile` of `texts` (at least 1)."""
    lengths = [len(tokenize(text)) for text in texts]
    return max(1, int(np.ceil(np.percentile(lengths, percentile))))


def tf_vocabulary_table(vocabulary: Sequence[str]):
    """A TensorFlow lookup table token -> id (unknown tokens -> 1)."""
    import tensorflow as tf

    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(vocabulary[2:]), dtype=tf.string),
            tf.range(2, len(vocabulary), dtype=tf.int64),
        ),
        default_value=1,
    )


def tf_token_ids(texts, table, length: int):
    """`encode` as TensorFlow ops: a (batch,) string tensor -> (batch, length) ids.

    Used inside the exported SavedModel, so that it takes raw strings; `table`
    comes from `tf_vocabulary_table`.
    """
    import tensorflow as tf

    lowered = tf.strings.lower(texts, encoding="utf-8")
    # Put spaces around every one-character token, then split on spaces.
    spaced = tf.strings.regex_replace(lowered, f"([^{WORD}{SPACE}])", r" \1 ")
    spaced = tf.strings.regex_replace(spaced, f"[{SPACE}]+", " ")
    tokens = tf.strings.split(tf.strings.strip(spaced), sep=" ")
    tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    ids = tf.ragged.map_flat_values(table.lookup, tokens)
    ids = tf.cast(ids.to_tensor(default_value=0, shape=[None, length]), tf.int32)
    # No tokens: one unknown word, as in `encode`.
    first = tf.one_hot(0, length, dtype=tf.int32)[tf.newaxis, :]
    empty = tf.reduce_all(ids == 0, axis=1, keepdims=True)
    return tf.where(empty, first, ids)
