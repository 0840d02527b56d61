"""Which layers' output channels can be removed: producer -> pass-through layers -> consumer.

A producer (Dense, ConvND) can lose output channels when its output flows,
through layers that act on each channel separately, into exactly one Dense or
ConvND consumer whose matching inputs are then removed too. Outputs that
reach an `Add`, `Concatenate` or other merge, a model output, or several
consumers keep all their channels, so residual shapes stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from tfcompress.pruning.prune_low_magnitude_wrapper import CHANNEL_LAYERS, PruneLowMagnitude

# Layers that act on each channel separately and keep the channel axis last.
PASS_THROUGH = (
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
)

# Why a layer outside `channel_chains` cannot lose output channels.
NOT_REMOVABLE = (
    "its output channels reach an Add, a Concatenate, a depthwise convolution, a model output "
    "or several layers, so `shrink` cannot remove them"
)


@dataclass
class Chain:
    """A producer, the pass-through layers after it, and the one consumer they feed."""

    producer: keras.layers.Layer
    between: list[keras.layers.Layer]
    consumer: keras.layers.Layer


def _inner(layer: keras.layers.Layer) -> keras.layers.Layer:
    return layer.layer if isinstance(layer, PruneLowMagnitude) else layer


def _consumers(model: keras.Model) -> dict[int, list[keras.layers.Layer]]:
    """Layer id -> the layers that take its output (flat Sequential/functional models)."""
    by_output = {id(layer.output): layer for layer in model.layers}
    consumers: dict[int, list] = {id(layer): [] for layer in model.layers}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        for tensor in inputs:
            producer = by_output.get(id(tensor))
            if producer is not None:
                consumers[id(producer)].append(layer)
    return consumers


def channel_chains(model: keras.Model) -> dict[str, Chain]:
    """Producer name -> its `Chain`, for every producer whose channels can be removed."""
    if any(isinstance(layer, keras.Model) for layer in model.layers):
        raise ValueError(
            f"Channel pruning and `shrink` work on flat Sequential or functional models; "
            f"model {model.name!r} nests other models."
        )
    consumers = _consumers(model)
    outputs = {id(t) for t in model.outputs}
    chains = {}
    for layer in model.layers:
        if not isinstance(_inner(layer), CHANNEL_LAYERS):
            continue
        between, current = [], layer
        while True:
            following = consumers[id(current)]
            if id(current.output) in outputs or len(following) != 1:
                break
            (nxt,) = following
            if isinstance(_inner(nxt), CHANNEL_LAYERS):
                chains[_inner(layer).name] = Chain(_inner(layer), between, _inner(nxt))
                break
            if not isinstance(nxt, PASS_THROUGH):
                break
            between.append(nxt)
            current = nxt
    return chains
