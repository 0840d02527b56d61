"""Step 1 of `quantize_apply`: each layer's QuantizeConfig under the scheme and precision."""

from __future__ import annotations

from collections.abc import Callable

import keras

from tfcompress.quantization.quantize_annotate import QuantizeAnnotate, unannotated
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.quantizer import WEIGHT_BITS, check_bits
from tfcompress.quantization.registry import default_quantize_config, unregistered_error
from tfcompress.quantization.scheme import QuantizeScheme
from tfcompress.utils.surgery import graph_layers, leaf_layers
from tfcompress.utils.validation import check_layer_names

Precision = dict | Callable[[keras.layers.Layer], int | str | None] | None
FLOAT = "float"
QAT_LEAVES = (QuantizeWrapper, QuantizeAnnotate)  # wrappers not looked into
Configs = dict[keras.layers.Layer, QuantizeConfig | None]


def bits_for(
    layer: keras.layers.Layer, precision: Precision, default: int | None
) -> int | str | None:
    """`precision`'s weight bits for `layer` (by name, then class, or its function): 8, 4,
    `"float"`, or `default` when it says nothing."""
    if precision is None:
        return default
    if callable(precision) and not isinstance(precision, dict):
        value = precision(layer)
    else:
        value = precision.get(layer.name)
        if value is None:
            value = next(
                (v for k, v in precision.items() if isinstance(k, type) and isinstance(layer, k)),
                None,
            )
    if value is None:
        return default
    if value == FLOAT:
        return FLOAT
    return check_bits(value, WEIGHT_BITS, "precision", f"Layer {layer.name!r}")


def check_precision_names(model: keras.Model, precision: Precision) -> None:
    """Raises when a name key of a `precision` dict is the name of no layer of `model`."""
    if isinstance(precision, dict):
        check_layer_names(model, precision, "precision")


def resolve_config(
    layer: keras.layers.Layer,
    explicit: QuantizeConfig | None,
    scheme: QuantizeScheme,
    precision: Precision,
) -> QuantizeConfig | None:
    """The QuantizeConfig for a layer to quantize, or None to keep it float.

    An explicit config keeps its own bits unless `precision` names the layer.

    Raises:
        ValueError: The layer has no config (none given, none registered), or
            `precision` gives it bits TFLite cannot run.
    """
    config = explicit or default_quantize_config(layer)
    if config is None:
        raise unregistered_error(layer)
    bits = bits_for(layer, precision, None if explicit else scheme.weight_bits)
    if bits == FLOAT:
        return None
    if scheme.learned_ranges and not explicit and config.output_quantizer is not None:
        config = QuantizeConfig(config.weight_quantizers, scheme.activation_quantizer())
    return config if bits is None else config.with_weight_bits(bits)


def resolve_configs(
    model: keras.Model, scheme: QuantizeScheme, precision: Precision, annotate_all: bool = False
) -> Configs:
    """Step 1: the config of each annotated layer of `model` (None: it stays float).

    Keyed by the layer as it sits in the graph (the annotation). With
    `annotate_all` every layer counts as annotated (what `quantize_model`
    does), keeping the config of those annotated already.

    Raises:
        ValueError: Nothing is annotated, or a config cannot be resolved.
    """
    check_precision_names(model, precision)
    if annotate_all:
        annotated = graph_layers(model)
    else:
        leaves = leaf_layers(model, QAT_LEAVES)
        annotated = [leaf for leaf in leaves if isinstance(leaf, QuantizeAnnotate)]
        if not annotated:
            raise ValueError(
                f"Model {model.name!r} has no annotated layers; use `quantize_model`, "
                "`quantize_annotate_model` or `quantize_annotate_layer` first."
            )
    return {
        layer: resolve_config(unannotated(layer), _explicit(layer), scheme, precision)
        for layer in annotated
    }


def _explicit(layer: keras.layers.Layer) -> QuantizeConfig | None:
    return layer.quantize_config if isinstance(layer, QuantizeAnnotate) else None
