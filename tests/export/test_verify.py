"""The comparison every export verification relies on."""

import numpy as np

from keras_lstm.export import _verify


def test_max_abs_diff_on_hand_made_values():
    one = [np.array([1.0, 2.0])]
    assert _verify.max_abs_diff(one, [np.array([1.0, 2.5])]) == 0.5
    assert _verify.max_abs_diff(one, [np.array([1.0])]) == float("inf")
    assert _verify.max_abs_diff(one, one + one) == float("inf")
    # NaN where Keras has NaN too is a match; NaN on one side only is not.
    nan = np.array([np.nan, 2.0])
    assert _verify.max_abs_diff([nan], [np.array([np.nan, 2.25])]) == 0.25
    assert _verify.max_abs_diff([nan], [np.array([1.0, 2.0])]) == float("inf")
    assert _verify.max_abs_diff([np.array([np.inf])], [np.array([np.inf])]) == float(
        "inf"
    )


def test_each_id_input_is_drawn_from_its_own_embedding():
    """A (batch, 1) float category feeding Embedding(3), placed before int32
    text feeding Embedding(50, mask_zero): the category is drawn from 1-2,
    the text from 1-49 and padded over its own 12 steps (the category does
    not set the lengths). A float16 id input stays below 2048, the integers
    float16 holds exactly."""
    import keras

    import keras_lstm
    from keras_lstm import export

    cat = keras.Input((1,), name="cat")
    text = keras.Input((12,), dtype="int32", name="text")
    c = keras.layers.Flatten()(keras.layers.Embedding(3, 2)(cat))
    t = keras_lstm.LSTM(3)(keras.layers.Embedding(50, 4, mask_zero=True)(text))
    joined = keras.layers.Concatenate()([c, t])
    model = keras.Model([cat, text], keras.layers.Dense(1)(joined))
    specs = export._input_specs(model, None)
    cases = dict(_verify.random_cases(model, specs, 6, 12, "any", 0))
    categories, texts = zip(*cases.values())
    for drawn in categories:
        assert drawn.dtype == np.float32 and set(drawn.ravel()) <= {1.0, 2.0}
    assert texts[0].min() >= 1 and texts[0].max() > 2
    lengths = (texts[1] != 0).sum(axis=1)
    assert lengths[:3].tolist() == [12, 1, 0]
    assert (texts[2][:, 0] == 0).any()  # left padding

    wide = keras.Input((12,), dtype="float16")
    half = keras.Model(wide, keras.layers.Embedding(4103, 2)(wide))
    (drawn,) = _verify.random_cases(
        half, export._input_specs(half, None), 64, 12, "right", 0
    )[0][1]
    assert drawn.dtype == np.float16 and 1 <= drawn.min() and drawn.max() < 2048
