"""The one-layer int8 models of `benchmarks/kernels.py`: a 1024x1024 FULLY_CONNECTED and
three MobileNet-like CONV_2D layers, dense or with random 16x4 weight blocks zeroed."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfcompress.core.blocks import BLOCK_SHAPE

BLOCK = BLOCK_SHAPE  # (outputs, inputs) of the TFLite [out][in] weight matrix
FC_SIZE = 1024
FC_SPARSITIES = (0.0, 0.5, 0.8, 0.9)
FC_BATCHES = (1, 32)
# (label, spatial size, input channels, output channels, kernel size)
CONV_SHAPES = (
    ("1x1 28x28x128->128", 28, 128, 128, 1),
    ("3x3 28x28x64->64", 28, 64, 64, 3),
    ("1x1 14x14x256->256", 14, 256, 256, 1),
)
CONV_SPARSITIES = (0.0, 0.8)
CALIBRATION = 32  # random samples calibrating the one-layer models


def block_keep(n_out: int, k_in: int, sparsity: float, rng: np.random.Generator) -> np.ndarray:
    """1/0 mask in the Keras `[in][out]` layout with `round(sparsity * blocks)` random 16x4
    blocks of the TFLite `[out][in]` matrix zeroed (the last block row may be partial)."""
    rows, cols = -(-n_out // BLOCK[0]), k_in // BLOCK[1]
    blocks = np.ones(rows * cols, dtype=np.float32)
    blocks[rng.choice(blocks.size, int(round(sparsity * blocks.size)), replace=False)] = 0.0
    tiles = blocks.reshape(rows, cols)
    matrix = np.repeat(np.repeat(tiles, BLOCK[0], axis=0), BLOCK[1], axis=1)[:n_out, :k_in]
    return matrix.T


def int8_tflite(model: keras.Model, samples: np.ndarray, batch: int | None = None) -> bytes:
    """Full-integer `.tflite` with int8 input and output, calibrated on `samples` (one at a
    time, or `batch` at a time for a model whose batch is fixed)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    step = batch or 1
    converter.representative_dataset = lambda: (
        [samples[i : i + step]] for i in range(0, len(samples) - step + 1, step)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def fc_model(sparsity: float, seed: int, batch: int | None = None) -> bytes:
    """A one-layer int8 FC model; `batch` fixes its stored batch (the cost model decides at
    the batch stored in the model)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((FC_SIZE,), batch_size=batch)
    layer = keras.layers.Dense(FC_SIZE, activation="relu")
    model = keras.Model(inputs, layer(inputs))
    kernel = rng.normal(0.0, FC_SIZE**-0.5, (FC_SIZE, FC_SIZE)).astype("float32")
    kernel *= block_keep(FC_SIZE, FC_SIZE, sparsity, rng)
    layer.set_weights([kernel, rng.normal(0.0, 0.1, FC_SIZE).astype("float32")])
    samples = rng.normal(size=(CALIBRATION, FC_SIZE)).astype("float32")
    return int8_tflite(model, samples, batch)


def conv_model(size: int, c_in: int, c_out: int, k: int, sparsity: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    inputs = keras.Input((size, size, c_in))
    layer = keras.layers.Conv2D(c_out, k, padding="same", activation="relu")
    model = keras.Model(inputs, layer(inputs))
    fan_in = k * k * c_in
    kernel = rng.normal(0.0, fan_in**-0.5, (fan_in, c_out)).astype("float32")
    kernel *= block_keep(c_out, fan_in, sparsity, rng)  # [kh*kw*in][out], TFLite's order
    layer.set_weights(
        [kernel.reshape(k, k, c_in, c_out), rng.normal(0.0, 0.1, c_out).astype("float32")]
    )
    samples = rng.normal(size=(CALIBRATION, size, size, c_in)).astype("float32")
    return int8_tflite(model, samples)


def layer_cases() -> list[dict]:
    cases = []
    for sparsity in FC_SPARSITIES:
        for batch in FC_BATCHES:
            cases.append(
                {
                    "layer": f"FC {FC_SIZE}x{FC_SIZE}",
                    "kind": "fc",
                    "batch": batch,
                    "sparsity": sparsity,
                    "shape": (batch, FC_SIZE),
                }
            )
    for label, size, c_in, c_out, k in CONV_SHAPES:
        for sparsity in CONV_SPARSITIES:
            cases.append(
                {
                    "layer": f"conv {label}",
                    "kind": "conv",
                    "batch": 1,
                    "sparsity": sparsity,
                    "shape": (1, size, size, c_in),
                    "conv": (size, c_in, c_out, k),
                }
            )
    return cases
