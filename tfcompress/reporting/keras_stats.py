"""Per-layer statistics of a Keras model, nested models included."""

from __future__ import annotations

import keras
import numpy as np

from tfcompress.reporting.layer_specs import lookup
from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.notes import layer_note
from tfcompress.reporting.weights import weight_stats


def _symbolic_shapes(layer: keras.layers.Layer) -> tuple[tuple, tuple] | None:
    """`(input_shape, output_shape)` of a layer called once in a functional graph.

    None when unknown: never called symbolically, shared, or of dynamic size.
    """
    try:
        inputs, outputs = layer.input, layer.output
    except (AttributeError, ValueError):  # never called symbolically, or shared
        return None
    if isinstance(inputs, (list, tuple)) or isinstance(outputs, (list, tuple)):
        inputs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    shapes = tuple(inputs.shape), tuple(outputs.shape)
    if any(d is None for shape in shapes for d in shape[1:]):  # dynamic size: MACs vary
        return None
    return shapes


def _layer_stats(layer: keras.layers.Layer, name: str) -> LayerStats:
    stats = LayerStats(name=name, kind=type(layer).__name__, note=layer_note(layer))
    # A wrapper (pruning, clustering, QAT) counts as the layer it wraps, plus its own variables.
    inner = layer.layer if isinstance(layer, keras.layers.Wrapper) else layer
    spec = lookup(inner)
    kernels = spec.kernels(inner) if spec and inner.built else []
    kernel_ids = {id(weight): matrix for weight, matrix in kernels}
    kernel_values = []
    for weight in layer.weights:
        value = keras.ops.convert_to_numpy(weight)
        matrix = kernel_ids.get(id(weight))
        stats.add_weight(
            weight_stats(weight.path, value, matrix), matrix is not None, 4 * value.size
        )
        if matrix is not None:
            kernel_values.append(value.ravel())
    if len(kernel_values) > 1:  # a separable conv's depthwise and pointwise kernels, an RNN's
        stats.unique = int(np.unique(np.concatenate(kernel_values)).size)
    if spec is None:
        stats.macs = None if layer.weights else 0
    else:
        shapes = _symbolic_shapes(layer)
        stats.macs = None if shapes is None else int(spec.macs(inner, *shapes))
    return stats


def keras_layer_stats(model: keras.Model, prefix: str = "") -> list[LayerStats]:
    """One `LayerStats` per layer of `model`, recursing into nested models.

    Layers of a nested model are named `outer/inner`. MACs need the layer's
    input and output shapes, which functional and Sequential models record; in
    a subclassed model they are unknown (None) for layers with weights.
    """
    rows = []
    for layer in model.layers:
        name = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            rows.extend(keras_layer_stats(layer, prefix=f"{name}/"))
        elif not isinstance(layer, keras.layers.InputLayer):
            rows.append(_layer_stats(layer, name))
    return rows
