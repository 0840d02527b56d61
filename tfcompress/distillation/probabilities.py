"""Probability outputs: telling a softmax head from logits, and distilling from it correctly.

Distillation losses compare logits. A model ending in a softmax outputs
probabilities instead; taken as logits, `softmax(p / T)` is nearly uniform and
the student learns next to nothing (or, for a softmax student, is pushed to
saturate one class). The logarithm of the probabilities is a set of logits for
the same distribution (`softmax(log p) = p`, and `softmax(log p / T) =
softmax(z / T)` for the logits `z` behind `p`), so such outputs are distilled
through `log p`.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from tfcompress.distillation.external_teacher import ExternalTeacher
from tfcompress.utils.surgery import is_graph_model

# Smallest probability taken before the logarithm (float32 softmax underflows to 0).
TINY = 1e-30
# How far from 1 the sums may be: a quantized (.tflite int8) softmax is off by a few steps of 1/256.
SUM_TOLERANCE = 0.05
PROBE_ROWS = 4


def ends_in_softmax(model: keras.layers.Layer) -> bool:
    """Whether the layer giving `model`'s output is a softmax (a `Softmax` layer, or a layer
    with `activation="softmax"`), looking through nested models and wrappers."""
    if isinstance(model, keras.layers.Wrapper):
        return ends_in_softmax(model.layer)
    if isinstance(model, keras.Model):
        if not is_graph_model(model) or len(model.outputs) != 1:
            return False
        output = model.outputs[0]
        last = [layer for layer in model.layers if layer.output is output]
        return bool(last) and ends_in_softmax(last[0])
    if isinstance(model, keras.layers.Softmax):
        return True
    return getattr(model, "activation", None) is keras.activations.softmax


def look_like_probabilities(values: np.ndarray) -> bool:
    """Whether every row of `values` (classes on the last axis, more than one) is
    non-negative and sums to 1."""
    values = np.asarray(values, dtype="float64")
    if values.ndim < 2 or values.shape[-1] < 2 or not np.all(np.isfinite(values)):
        return False
    sums = values.sum(axis=-1)
    return bool(np.all(values >= 0) and np.all(np.abs(sums - 1) <= SUM_TOLERANCE))


def probe_batch(sample_shape: tuple, dtype: str = "float32") -> np.ndarray:
    """A fixed batch to look at a model's outputs with: a zero sample, and for float inputs
    uniform [0, 1) ones (unknown sizes taken as 1)."""
    shape = tuple(d or 1 for d in sample_shape)
    batch = np.zeros((PROBE_ROWS, *shape), dtype)
    if np.issubdtype(batch.dtype, np.floating):
        batch[1:] = np.random.default_rng(0).uniform(size=(PROBE_ROWS - 1, *shape))
    return batch


def outputs_probabilities(
    model: keras.Model | ExternalTeacher, sample_shape: tuple, dtype: str = "float32"
) -> bool:
    """Whether `model` outputs probabilities: it ends in a softmax, or its outputs on a
    probe batch are non-negative and sum to 1 (a `.tflite` or callable teacher, or a
    `keras.ops.softmax` at the end of a functional model)."""
    if ends_in_softmax(model):
        return True
    probe = probe_batch(sample_shape, dtype)
    if isinstance(model, ExternalTeacher):
        values = model.predict(probe)
    else:
        values = model(probe, training=False)
        if isinstance(values, (list, tuple)) and len(values) == 1:
            values = values[0]
    return look_like_probabilities(keras.ops.convert_to_numpy(values))


def note_probabilities(role: str, name: str) -> None:
    """The one note that a teacher's or the student's probabilities are distilled as logits."""
    also = (
        " Its label loss still gets the probabilities (use from_logits=False there)."
        if role == "Student"
        else ""
    )
    warnings.warn(
        f"{role} {name!r} outputs probabilities (it ends in a softmax), not logits; the "
        f"Distiller distils from their logarithms, which are logits of the same distribution."
        f"{also}",
        stacklevel=3,
    )


def as_logits(probabilities):
    """`log(p)`: logits whose softmax is `p` (tensors, or numpy arrays)."""
    if isinstance(probabilities, np.ndarray):
        return np.log(np.maximum(probabilities, TINY)).astype(probabilities.dtype)
    return keras.ops.log(keras.ops.maximum(probabilities, TINY))
