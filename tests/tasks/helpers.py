"""Checks shared by the task tests."""

import keras


def assert_cosine_over_all_steps(model, metrics, epochs: int, steps: int) -> None:
    """The trained model's optimizer ran `--lr-schedule cosine` over every
    training step (epochs x batches per epoch) down to 1/20 of the peak."""
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert schedule.decay_steps == epochs * steps
    assert schedule.alpha == 0.05 and metrics["epochs_run"] == epochs
