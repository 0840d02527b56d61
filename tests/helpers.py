"""Helpers shared by the tests."""

import keras
import numpy as np


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
