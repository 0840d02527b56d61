"""Subclassed models: re-create, swap layer attributes while unbuilt, build, copy weights.

A built Keras layer refuses new sub-layers, so a subclassed model is not
changed in place: a new instance is made from its `get_config()`, its layer
attributes are replaced before it is built, it is built from the original's
`get_build_config()`, and every layer's weights are copied across by attribute
name. The original model is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np


def layer_attributes(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The model's public attributes that hold a layer, by attribute name."""
    return {
        name: value
        for name, value in vars(model).items()
        if not name.startswith("_") and isinstance(value, keras.layers.Layer)
    }


def rebuild_subclassed(
    model: keras.Model,
    swap: Callable[[keras.layers.Layer, keras.layers.Layer], keras.layers.Layer],
) -> keras.Model:
    """A new instance of `model` whose layer attributes went through `swap(fresh, old)`.

    `swap` receives the new instance's (unbuilt) layer and the original's, and
    returns the layer to put in its place. Weights are then copied from each
    original layer (or the layer it wraps) to the layer the swap kept or wrapped.

    Raises:
        ValueError: The model cannot be re-created from its config, or was never built.
    """
    build_config = model.get_build_config()
    if not model.built or not build_config:
        raise ValueError(f"Subclassed model {model.name!r} must be built (called on data) first.")
    try:
        fresh = model.__class__.from_config(model.get_config())
    except Exception as err:  # any constructor failure means the config is incomplete
        raise ValueError(
            f"Subclassed model {model.name!r} cannot be re-created from its `get_config()` "
            f"({type(err).__name__}: {err}). Give its class a `get_config()` returning its "
            "constructor arguments, or wrap its layers in `__init__` instead (for example "
            "`prune_low_magnitude(layer)`, `cluster_weights(layer)` or `QuantizeWrapper(layer)`)."
        ) from err
    old_layers = layer_attributes(model)
    copies = []
    for name, fresh_layer in layer_attributes(fresh).items():
        old = old_layers[name]
        new = swap(fresh_layer, old)
        if new is not fresh_layer:
            setattr(fresh, name, new)
        copies.append((_unwrapped(old), _unwrapped(new)))
    fresh.build_from_config(build_config)
    shape = [1 if d is None else d for d in build_config["input_shape"]]
    fresh(np.zeros(shape, dtype="float32"))  # marks the model built
    for old, new in copies:
        new.set_weights(old.get_weights())
    return fresh


def _unwrapped(layer: keras.layers.Layer) -> keras.layers.Layer:
    return layer.layer if isinstance(layer, keras.layers.Wrapper) else layer
