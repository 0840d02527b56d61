"""Checks of `sensitivity`'s arguments: the data, the layers and the options."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np

from tfcompress.factorization.factorized_dense import dense_unsupported
from tfcompress.planning.options import (
    BITS,
    STRUCTURE_ARGS,
    STRUCTURES,
    LayerOption,
    compressible,
    default_options,
)
from tfcompress.pruning.channel_graph import NOT_REMOVABLE, channel_chains
from tfcompress.pruning.masks import structure_problem
from tfcompress.utils.surgery import graph_layers
from tfcompress.utils.validation import check_samples

WHERE = "tc.sensitivity"
OVERRIDES = ("sparsities", "structures", "bits", "energies")


def check_inputs(x, model: keras.Model, argument: str) -> np.ndarray:
    """`x` as a float array of the model's input shape, with samples, all finite."""
    try:
        x = np.asarray(x, dtype="float32")
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{WHERE}: `{argument}` must be an array of input samples (or a tuple "
            f"(x, y)). Received: {argument} of type {type(x).__name__} ({err})"
        ) from None
    shape = tuple(model.inputs[0].shape[1:])
    x = check_samples(x, shape, argument, f"model {model.name!r}'s input")
    if not len(x):
        raise ValueError(f"{WHERE}: `{argument}` holds no samples. Received: shape {x.shape}")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ValueError(
            f"{WHERE}: `{argument}` holds {bad} NaN or inf value(s); the effect of a change "
            "cannot be measured on them."
        )
    return x


def check_labels(y, outputs_shape: tuple, argument: str) -> np.ndarray:
    """Integer labels, one per output row (`outputs_shape[:-1]`); one-hot rows become ids."""
    y = np.asarray(y)
    if y.shape == outputs_shape and outputs_shape[-1] > 1:  # one-hot
        y = y.argmax(axis=-1)
    expected = outputs_shape[:-1]
    if y.size != math.prod(expected) or len(y) != expected[0]:
        raise ValueError(
            f"{WHERE}: the labels of `{argument}` do not match the model's outputs: expected "
            f"one class id per output row, shape {tuple(expected)}. Received: labels of shape "
            f"{y.shape}"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(
                f"{WHERE}: the labels of `{argument}` must be integer class ids. Received "
                f"float labels such as {y.reshape(-1)[:3].tolist()}"
            )
    elif y.dtype.kind not in "iub":
        raise ValueError(
            f"{WHERE}: the labels of `{argument}` must be integer class ids. Received "
            f"labels of dtype {y.dtype}"
        )
    return y.reshape(-1).astype(np.int64)


def split_data(data, model: keras.Model, argument: str, need_labels: bool):
    """`(x, y)` of `data`, an array of inputs or an `(x, y)` pair (y None when absent)."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    elif need_labels:
        raise ValueError(
            f"{WHERE}: `{argument}` must be a tuple (x, y) of inputs and integer labels. "
            f"Received: {argument} of type {type(data).__name__}"
        )
    else:
        x, y = data, None
    x = check_inputs(x, model, argument)
    if y is not None and len(np.asarray(y)) != len(x):
        raise ValueError(
            f"{WHERE}: `{argument}` has {len(x)} samples but {len(np.asarray(y))} labels."
        )
    return x, y


def _names(layers: list) -> str:
    return ", ".join(repr(layer.name) for layer in layers)


def _select(model: keras.Model, names, argument: str) -> list[keras.layers.Layer]:
    """The compressible layers `names` picks, in model order."""
    candidates = [layer for layer in graph_layers(model) if compressible(layer)]
    if not candidates:
        raise ValueError(
            f"{WHERE}: model {model.name!r} has no layer an option applies to (Dense, Conv2D, "
            "SeparableConv2D or DepthwiseConv2D with weights)."
        )
    if names is None:
        return candidates
    names = [names] if isinstance(names, str) else list(names)
    by_name = {layer.name: layer for layer in candidates}
    others = {layer.name for layer in graph_layers(model)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        reason = [
            f"{n!r} ({'has no weights an option changes' if n in others else 'no such layer'})"
            for n in unknown
        ]
        raise ValueError(
            f"{WHERE}: `{argument}` must name layers options apply to. Received: "
            f"{', '.join(reason)}. The layers of model {model.name!r} options apply to: "
            f"{_names(candidates)}"
        )
    return [layer for layer in candidates if layer.name in names]


def _check_overrides(options: dict) -> None:
    checks = {
        "sparsities": lambda v: isinstance(v, numbers.Real) and 0 < v < 1,
        "structures": lambda v: v in STRUCTURES,
        "bits": lambda v: v in BITS,
        "energies": lambda v: isinstance(v, numbers.Real) and 0 < v <= 1,
    }
    allowed = {
        "sparsities": "numbers in (0, 1)",
        "structures": f"names in {STRUCTURES}",
        "bits": f"values in {BITS}",
        "energies": "numbers in (0, 1]",
    }
    for key, values in options.items():
        if isinstance(values, (str, numbers.Number)):
            values = (values,)
        bad = [v for v in values if isinstance(v, bool) or not checks[key](v)]
        if bad:
            raise ValueError(
                f"{WHERE}: `options[{key!r}]` must hold {allowed[key]}. Received: {bad}"
            )


def _channel_removable(model: keras.Model) -> set[str]:
    """The layers whose output channels `shrink` can remove (none in a nested model)."""
    if any(isinstance(layer, keras.Model) for layer in model.layers):
        return set()
    return set(channel_chains(model))


def _fit_problem(layer: keras.layers.Layer, option: LayerOption, removable: set[str]) -> str | None:
    """Why `option` cannot be applied to `layer`, or None; `removable`: the layers whose
    output channels can be removed."""
    prunable = isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    if option.kind == "bits":
        return None
    if option.kind == "prune":
        if not prunable:
            return f"a {type(layer).__name__} takes bits options only"
        shape = tuple(layer.kernel.shape)
        args = STRUCTURE_ARGS[option.structure]
        if option.structure in ("16x4", "2:4"):
            problem = structure_problem(
                shape, args.get("block_size", (1, 1)), args.get("sparsity_m_by_n")
            )
            if problem is not None:
                return problem
        if option.structure == "2:4" and option.sparsity != 0.5:
            return "2:4 pruning keeps 2 of every 4 inputs: its sparsity is 0.5"
        if option.structure == "channels" and shape[-1] < 2:
            return "it has a single output channel"
        if option.structure == "channels" and layer.name not in removable:
            return NOT_REMOVABLE
        return None
    reason = dense_unsupported(layer)
    if reason is not None:
        return f"only Dense layers factorize ({reason})"
    if option.rank > min(layer.kernel.shape):
        return f"the rank must be at most min(in, units) = {min(layer.kernel.shape)}"
    return None


def _layer_list(layer: keras.layers.Layer, values, removable: set[str]) -> list[LayerOption]:
    if isinstance(values, (LayerOption, dict)):
        values = [values]
    found = []
    for value in values:
        option = LayerOption.from_dict(value) if isinstance(value, dict) else value
        if not isinstance(option, LayerOption):
            raise TypeError(
                f"{WHERE}: `options[{layer.name!r}]` must hold LayerOptions. Received: "
                f"{value!r} of type {type(value).__name__}"
            )
        problem = _fit_problem(layer, option, removable)
        if problem is not None:
            raise ValueError(
                f"{WHERE}: option {option.key!r} does not fit layer {layer.name!r}: {problem}."
            )
        if option not in found:
            found.append(option)
    return found


def layer_options(
    model: keras.Model, options, layers
) -> list[tuple[keras.layers.Layer, list[LayerOption]]]:
    """The layers to measure, in model order, each with its options (see `sensitivity`)."""
    if options is not None and not isinstance(options, dict):
        raise TypeError(
            f"{WHERE}: `options` must be None, a dict of `default_options` arguments "
            f"({', '.join(OVERRIDES)}) or a dict {{layer name: [LayerOption, ...]}}. "
            f"Received: options of type {type(options).__name__}"
        )
    chosen = _select(model, layers, "layers")
    removable = _channel_removable(model)

    def defaults(layer, **overrides):  # channel pruning only where `shrink` can remove them
        found = default_options(layer, **overrides)
        return [
            option for option in found if option.structure != "channels" or layer.name in removable
        ]

    if not options:
        return [(layer, defaults(layer)) for layer in chosen]
    keys = list(options)
    if all(key in OVERRIDES for key in keys):
        _check_overrides(options)
        tuples = {
            k: (v,) if isinstance(v, (str, numbers.Number)) else tuple(v)
            for k, v in options.items()
        }
        return [(layer, defaults(layer, **tuples)) for layer in chosen]
    if any(key in OVERRIDES for key in keys):
        raise ValueError(
            f"{WHERE}: `options` mixes `default_options` arguments ({OVERRIDES}) with layer "
            f"names. Received keys: {keys}"
        )
    named = _select(model, keys, "options")
    if layers is not None:
        picked = {layer.name for layer in chosen}
        named = [layer for layer in named if layer.name in picked]
    return [(layer, _layer_list(layer, options[layer.name], removable)) for layer in named]
