"""Running a model with one layer's kernels changed, reusing the original activations.

For a layer of the model's own graph, the model is split at that layer: an upstream
submodel computes, once per batch, the layer's input and any tensor the rest of the graph
takes from before the layer (a skip connection, a branch), and a downstream submodel runs
from there to the output, once per option. Where the graph does not split (a layer inside a
nested model, a shared layer, a disconnected graph), the whole model runs. Either way the
option's kernels are assigned into the layer's own variables and the original values are
always put back, even on error. A split is checked once against the full model (on the
first batch, unchanged weights) and dropped if they differ.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from tfcompress.planning.changes import kernel_variables

SPLIT_TOLERANCE = 1e-4  # relative to the outputs' largest magnitude


def _flat(tensors) -> list:
    return list(keras.tree.flatten(tensors))


def split_at(model: keras.Model, layer: keras.layers.Layer) -> tuple | None:
    """`(upstream, downstream)` submodels around `layer` (upstream None when the layer reads
    the model's input only), or None when the graph does not split there."""
    if not any(layer is other for other in model.layers):
        return None
    try:
        own = _flat(layer.input)
        affected = {id(t) for t in _flat(layer.output)}
        needed, known = list(own), {id(t) for t in own}
        for other in model.layers:
            if other is layer or isinstance(other, keras.layers.InputLayer):
                continue
            inputs = _flat(other.input)
            if any(id(t) in affected for t in inputs):
                for tensor in inputs:
                    if id(tensor) not in affected and id(tensor) not in known:
                        needed.append(tensor)
                        known.add(id(tensor))
                affected.update(id(t) for t in _flat(other.output))
        if not all(id(t) in affected for t in model.outputs):
            return None
        downstream = keras.Model(needed, model.outputs)
        if len(needed) == 1 and needed[0] is model.inputs[0]:
            return None, downstream
        return keras.Model(model.inputs, needed), downstream
    except (ValueError, AttributeError, TypeError):  # shared or nested tensors, disconnected
        return None


def _as_list(values) -> list:
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _run(split, model: keras.Model, batch: np.ndarray, upstream_values) -> np.ndarray:
    if split is None:
        return np.asarray(model.predict_on_batch(batch))
    return np.asarray(split[1].predict_on_batch(upstream_values))


def _upstream(split, batch: np.ndarray):
    if split is None:
        return None
    if split[0] is None:
        return batch
    values = _as_list(split[0].predict_on_batch(batch))
    return values[0] if len(values) == 1 else values


def _split_agrees(split, model: keras.Model, batch: np.ndarray) -> bool:
    full = np.asarray(model.predict_on_batch(batch))
    part = _run(split, model, batch, _upstream(split, batch))
    scale = max(float(np.abs(full).max()), 1e-12)
    return part.shape == full.shape and float(np.abs(part - full).max()) <= SPLIT_TOLERANCE * scale


def changed_outputs(
    model: keras.Model,
    layer: keras.layers.Layer,
    variants: list[list[np.ndarray]],
    x: np.ndarray,
    batch_size: int,
    consume: Callable[[int, int, np.ndarray], None],
    split: bool = True,
) -> bool:
    """Runs `model` on `x` once per variant of `layer`'s kernels.

    Args:
        model: The model.
        layer: One of its layers (nested ones too).
        variants: Per variant, the new value of each of `kernel_variables(layer)`.
        x: The inputs.
        batch_size: Samples per batch.
        consume: Called as `consume(start, variant_index, outputs)` per batch and variant.
        split: Run only the part of the graph from `layer` on where possible (False: the
            whole model every time).

    Returns:
        Whether the split graph was used.
    """
    variables = kernel_variables(layer)
    saved = [keras.ops.convert_to_numpy(v) for v in variables]
    parts = split_at(model, layer) if split else None
    if parts is not None and not _split_agrees(parts, model, x[:batch_size]):
        parts = None
    try:
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            upstream_values = _upstream(parts, batch)
            for index, values in enumerate(variants):
                for variable, value in zip(variables, values):
                    variable.assign(value)
                consume(start, index, _run(parts, model, batch, upstream_values))
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)
    return parts is not None
