"""Temperatures and loss weights: a constant, or a Keras schedule of the training step."""

from __future__ import annotations

import keras

Schedule = keras.optimizers.schedules.LearningRateSchedule
Scalar = float | Schedule


def check_scalar(name: str, value, positive: bool = False) -> Scalar:
    """A constant (as float) or a `LearningRateSchedule`, checked at step 0.

    Args:
        name: The argument name, for error messages.
        value: A number, a `LearningRateSchedule`, or its serialized dict.
        positive: Require > 0 (temperatures); otherwise >= 0 (weights).

    Raises:
        TypeError: Neither a number nor a schedule.
        ValueError: The value (a schedule's value at step 0) is out of range.
    """
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if isinstance(value, Schedule):
        first = float(keras.ops.convert_to_numpy(value(0)))
        where = f"{name} (a schedule) at step 0 is {first}"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        first, where = float(value), f"Received: {name}={value!r}"
        value = first
    else:
        raise TypeError(
            f"`{name}` must be a number or a keras.optimizers.schedules.LearningRateSchedule. "
            f"Received: {name} of type {type(value).__name__}"
        )
    if positive and not first > 0:
        raise ValueError(f"`{name}` must be > 0. {where}")
    if not positive and not first >= 0:
        raise ValueError(f"`{name}` must be >= 0. {where}")
    return value


def value_at(value: Scalar, step):
    """The value at training step `step` (a tensor for schedules, a float otherwise)."""
    if isinstance(value, Schedule):
        return keras.ops.cast(value(step), "float32")
    return value


def is_zero(value: Scalar) -> bool:
    """True for the constant 0 (a schedule may become non-zero, so it never is)."""
    return not isinstance(value, Schedule) and value == 0.0


def serialize_scalar(value: Scalar):
    """A JSON-friendly form for `get_config` (floats stay floats)."""
    if isinstance(value, Schedule):
        return keras.saving.serialize_keras_object(value)
    return value
