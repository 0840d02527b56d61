"""Argument checks shared by export, evaluation and the report."""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np

from tfcompress.utils.surgery import is_graph_model


def check_built(model: keras.Model, argument: str = "model") -> None:
    """Raises when `model` is not a built Keras model."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`{argument}` must be a keras.Model. Received: {argument} of type "
            f"{type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"`{argument}` ({model.name!r}) was never built, so its input shape is unknown. "
            "Call it on data once, or build it with `model.build(input_shape)`, or define it "
            "with `keras.Input`."
        )


def model_input_shapes(model: keras.Model, input_shape: tuple | None = None) -> list[tuple]:
    """The per-sample input shapes of a built model (batch dimension dropped).

    Sequential and functional models know them; a subclassed model does not, so
    the caller passes `input_shape` (one sample's shape) for it.
    """
    if input_shape is not None:
        return [tuple(input_shape)]
    if is_graph_model(model):
        return [tuple(t.shape[1:]) for t in model.inputs]
    raise ValueError(
        f"Cannot tell the input shape of model {model.name!r}: it has no symbolic inputs "
        "(a subclassed model). Pass `input_shape=` (the shape of one sample)."
    )


def check_samples(x: np.ndarray, shape: tuple, argument: str, where: str) -> np.ndarray:
    """Checks that `x` is a batch of samples of per-sample `shape` (None matches any size)."""
    x = np.asarray(x)
    if x.ndim != len(shape) + 1 or any(
        want is not None and want != got for want, got in zip(shape, x.shape[1:])
    ):
        expected = "(n, " + ", ".join("?" if d is None else str(d) for d in shape) + ")"
        raise ValueError(
            f"`{argument}` has the wrong shape for {where}: expected {expected}, "
            f"received {argument}.shape={x.shape}."
        )
    return x


def layer_names(model: keras.layers.Layer) -> set[str]:
    """The name of every layer inside `model`: nested models, wrappers and what they wrap."""
    found = set()
    stack = list(model.layers) if isinstance(model, keras.Model) else [model]
    while stack:
        layer = stack.pop()
        found.add(layer.name)
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
        elif isinstance(layer, keras.layers.Wrapper):
            stack.append(layer.layer)
    return found


def check_layer_names(
    model: keras.Model,
    names: Iterable,
    argument: str,
    known: set[str] | None = None,
    limit: int = 40,
) -> None:
    """Raises when a string in `names` is the name of no layer of `model` (other entries,
    e.g. layer classes, are not checked); the error lists the names that exist.

    `known`: the names that count (default: every layer inside `model`, see `layer_names`).
    """
    known = layer_names(model) if known is None else known
    missing = [n for n in names if isinstance(n, str) and n not in known]
    if not missing:
        return
    existing = sorted(known)
    shown = ", ".join(repr(n) for n in existing[:limit])
    if len(existing) > limit:
        shown += f", ... ({len(existing) - limit} more)"
    raise ValueError(
        f"No layer named {', '.join(repr(n) for n in missing)} in model {model.name!r}: "
        f"every name in `{argument}` must be one of its layers. Its layers: {shown}"
    )
