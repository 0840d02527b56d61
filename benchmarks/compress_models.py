"""The models of the compression benchmark (benchmarks/compress.py) and how each is trained.

One entry per model in `MODELS`: how to build it, the size goal of issue 15, the epochs that
converge the float model and those of the compressed rows' fine-tuning, and its recipes in
benchmarks/recipes (None: the model has none).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import keras

import tfcompress as tc

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")


@dataclass(frozen=True)
class BenchModel:
    """One benchmarked model: `goal` is how many times smaller than its float `.tflite`
    (gzip) it should get within 1 point; `prune_epochs` / `qat_epochs` are the fine-tuning
    of every compressed row; `recipe` / `latency_recipe` name files of benchmarks/recipes."""

    build: Callable[[], keras.Model]
    goal: int
    pretrain_epochs: int
    prune_epochs: int
    qat_epochs: int
    recipe: str | None = None
    latency_recipe: str | None = None  # also: a latency target is planned for this model


def mobilenet_v2() -> keras.Model:
    """`keras.applications.MobileNetV2` (alpha 0.35, `weights=None`) on MNIST's 28x28 digits
    zero-padded to its smallest input, 32x32, as one flat functional model (logits out).
    BatchNormalization momentum 0.9, so a few epochs settle its statistics."""
    inputs = keras.Input((28, 28, 1), name="image")
    padded = keras.layers.ZeroPadding2D(2, name="pad_to_32")(inputs)
    net = keras.applications.MobileNetV2(
        input_tensor=padded, alpha=0.35, weights=None, classes=10, classifier_activation=None
    )
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return keras.Model(inputs, net.output, name="mobilenet_v2")


# The MobileNets have no hand recipe: their uniform rows match the planned row's size, and
# their goals (not issue 15's, which names none for them) are what a depthwise-heavy model
# can plausibly lose in gzip bytes within a point.
MODELS = {
    "lenet_300_100": BenchModel(tc.models.lenet_300_100, 40, 20, 8, 2, "lenet_300_100"),
    "small_cnn": BenchModel(tc.models.small_cnn, 50, 6, 4, 1, "small_cnn", "small_cnn_latency"),
    "tiny_mobilenet": BenchModel(tc.models.tiny_mobilenet, 3, 8, 4, 1),
    "mobilenet_v2": BenchModel(mobilenet_v2, 10, 6, 3, 1),
}


def recipe_path(name: str) -> str:
    """The path of benchmarks/recipes/<name>.yaml."""
    return os.path.join(RECIPES_DIR, f"{name}.yaml")


def pretrain(name: str, data, seed: int) -> keras.Model:
    """The float model `name`, trained for its pretraining epochs on `data` (Adam 1e-3,
    batch 64)."""
    keras.utils.set_random_seed(seed)
    model = MODELS[name].build()
    model.compile(keras.optimizers.Adam(1e-3), LOSS)
    model.fit(
        data.x_train, data.y_train, epochs=MODELS[name].pretrain_epochs, batch_size=64, verbose=0
    )
    return model
