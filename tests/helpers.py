"""Helpers shared by the tests."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

# The large keras.applications architectures of the coverage matrix take tens of minutes
# together on 2 cores: CI runs the small ones; `TFCOMPRESS_FULL_MATRIX=1` runs them all.
FULL_MATRIX = pytest.mark.skipif(
    os.environ.get("TFCOMPRESS_FULL_MATRIX") != "1",
    reason="a large keras.applications architecture of the coverage matrix: "
    "run all of them with TFCOMPRESS_FULL_MATRIX=1",
)


def compile_classifier(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def randomize_biases(model: keras.Model, seed: int = 0) -> keras.Model:
    """Fresh biases are zero and the converter drops zero biases; make them count."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32"))
    return model


def fit_in_fixed_order(model, x, y, epochs: int, seed: int) -> keras.Model:
    """Trains with the weights and each epoch's sample order drawn from `seed` by numpy.

    The order is fixed by the seed alone (not by Keras' shuffling), so a trained fixture differs
    between CPUs only by their floating-point arithmetic (oneDNN's kernels differ per ISA).
    """
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        model.fit(x[order], y[order], epochs=1, batch_size=64, shuffle=False, verbose=0)
    return model


def plain_convert(converter: tf.lite.TFLiteConverter, mode: str, samples: np.ndarray) -> bytes:
    """Converts with `mode` set up the way the TFLite guides do it (int8 and int16x8
    calibrated on `samples`, one at a time), for parity tests against `export_tflite`."""
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int16x8"):
        samples = samples.astype("float32")
        converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
        ops = tf.lite.OpsSet
        converter.target_spec.supported_ops = [
            ops.TFLITE_BUILTINS_INT8
            if mode == "int8"
            else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return converter.convert()
