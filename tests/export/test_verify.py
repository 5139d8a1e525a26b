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
