"""Copying layers and Sequential/functional models: shared by pruning, clustering and QAT."""

from __future__ import annotations

from collections.abc import Callable

import keras


def is_graph_model(model: keras.Model) -> bool:
    """Sequential and functional models have a layer graph that can be cloned."""
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def fresh_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new, unbuilt layer from `layer`'s config."""
    return layer.__class__.from_config(layer.get_config())


def built_like(fresh: keras.layers.Layer, old: keras.layers.Layer) -> keras.layers.Layer:
    """`fresh` built like `old` and holding its weights (when `old` is built)."""
    build_config = old.get_build_config() if old.built else None
    if build_config:
        fresh.build_from_config(build_config)
        fresh.set_weights(old.get_weights())
    return fresh


def built_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new layer from `layer`'s config, built and holding `layer`'s weights."""
    return built_like(fresh_copy(layer), layer)


def copy_into(old: keras.layers.Layer, new: keras.layers.Layer) -> Callable[[], None]:
    """A function that copies `old`'s weights into `new` (once `new` is built)."""
    return lambda: new.set_weights(old.get_weights())


def clone_graph(model: keras.Model, replace: Callable) -> keras.Model:
    """Clones a Sequential/functional model (nested ones too), mapping layers through `replace`.

    `replace(layer)` returns a new layer and a function that copies the old
    layer's weights into it once the clone is built.
    """
    copies = []

    def clone_layer(layer):
        new, copy_weights = replace(layer)
        copies.append(copy_weights)
        return new

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for copy_weights in copies:
        copy_weights()
    return clone


def leaf_layers(
    layer: keras.layers.Layer, wrappers: tuple[type, ...] = ()
) -> list[keras.layers.Layer]:
    """The layers inside `layer`, looking into nested models and through wrappers.

    Instances of `wrappers` count as leaves themselves; any other
    `keras.layers.Wrapper` is looked through to the layer it wraps.
    """
    if isinstance(layer, wrappers):
        return [layer]
    if isinstance(layer, keras.Model):
        children = layer.layers
    elif isinstance(layer, keras.layers.Wrapper):
        children = [layer.layer]
    else:
        return [layer]
    return [leaf for child in children for leaf in leaf_layers(child, wrappers)]
