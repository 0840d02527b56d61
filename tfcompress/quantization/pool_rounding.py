"""How TFLite's int8 AVERAGE_POOL_2D rounds a mean that falls halfway between two int8 values.

The kernel sums the window's int8 values (zero point included) and divides by
their count rounding half away from int8 zero: `(sum - n/2) / n` below zero.
Fake quantization rounds a half up (or, by float rounding, down). A 2x2 pool's
mean is a half on a quarter of its windows, so QAT was one step from the int8
file on about a tenth of a pool's outputs (measured: 3% in DenseNet121's
transition pools, 5-28% in NASNetMobile's), nearly always upward, and every
layer after amplified it. The pool's output range follows its input's
(`shared_ranges.py`), so its means lie on that grid's halves exactly and
`rounded_like_average_pool` finds them. An export traces the pools without it
(`for_export`): the converter reads the range from the FakeQuant op alone, and
the int8 kernel rounds the halves itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

_EXPORTING = [0]  # how many `for_export` blocks are open


@contextlib.contextmanager
def for_export() -> Iterator[None]:
    """Traces average pools with plain fake quantization, as the converter must see them."""
    _EXPORTING[0] += 1
    try:
        yield
    finally:
        _EXPORTING[0] -= 1


def exporting() -> bool:
    return _EXPORTING[0] > 0


def rounded_like_average_pool(x: tf.Tensor, lo: tf.Tensor, hi: tf.Tensor, bits: int, window: int):
    """The value TFLite's int8 AVERAGE_POOL_2D writes for the mean `x` of at most `window`
    values on the grid of `[lo, hi]` (nudged as `fake_quant_with_min_max_vars` nudges it).

    A mean of `n` values is a multiple of `1/n` steps, at least `1/(2 window)` from a half
    unless it is one, so a half is told apart from its neighbours and from float rounding.
    """
    levels = float(2**bits - 1)
    offset = 2.0 ** (bits - 1)
    scale = (hi - lo) / levels
    zero = tf.clip_by_value(tf.floor(-lo / scale + 0.5), 0.0, levels)  # the nudged zero point
    value = x / scale + zero - offset  # in int8 units, unrounded
    below = tf.floor(value)
    half = tf.abs(value - below - 0.5) < 0.25 / window
    away = tf.where(value < 0, below, below + 1.0)
    int8 = tf.clip_by_value(tf.where(half, away, tf.round(value)), -offset, levels - offset)
    return (int8 + offset - zero) * scale
