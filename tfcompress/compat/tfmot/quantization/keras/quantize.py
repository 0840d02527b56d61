"""`quantize_annotate_layer`, `quantize_annotate_model` and `quantize_apply` for tfmot code."""

from __future__ import annotations

import keras

from tfcompress import quantization
from tfcompress.compat.tfmot.input_shape import keep_input_shape
from tfcompress.compat.tfmot.quantization.keras.default_8bit import Default8BitQuantizeScheme
from tfcompress.compat.tfmot.quantization.keras.quantize_config import QuantizeConfig
from tfcompress.utils.surgery import leaf_layers


def quantize_annotate_layer(
    to_annotate: keras.layers.Layer,
    quantize_config: quantization.QuantizeConfig | None = None,
) -> quantization.QuantizeAnnotate:
    """Marks one layer for quantization; a tfmot-style `QuantizeConfig` is accepted.

    The layer keeps its `input_shape=` argument. A tfmot-style config is
    translated by `quantize_apply`, once the layer is built, so the layer need
    not be known to tfcompress's registry.
    """
    if isinstance(quantize_config, QuantizeConfig):
        annotated = quantization.QuantizeAnnotate(to_annotate, quantize_config)
    else:
        annotated = quantization.quantize_annotate_layer(to_annotate, quantize_config)
    return keep_input_shape(to_annotate, annotated)


def quantize_annotate_model(to_annotate: keras.Model) -> keras.Model:
    """`tfcompress.quantize_annotate_model`, keeping layers annotated with a tfmot-style config.

    tfcompress clones the model through the layers' configs; the classes of
    those layers and configs are made known for the clone, as tfmot reuses
    the annotated layers and needs no `quantize_scope` here.
    """
    with keras.saving.custom_object_scope(_annotated_classes(to_annotate)):
        return quantization.quantize_annotate_model(to_annotate)


def quantize_apply(
    model: keras.Model, scheme: str | quantization.QuantizeScheme | None = None
) -> keras.Model:
    """`tfcompress.quantize_apply` with tfmot's schemes and tfmot-style configs.

    Args:
        model: The annotated model.
        scheme: `default_8bit.Default8BitQuantizeScheme()` (the default), a
            scheme from `experimental.combine`, or any tfcompress scheme or scheme
            name.
    """
    annotations = _tfmot_annotations(model)
    objects = _annotated_classes(model)
    originals = [layer.quantize_config for layer in annotations]
    try:
        for layer, config in zip(annotations, originals):
            layer.quantize_config = config.for_layer(layer.layer)
        with keras.saving.custom_object_scope(objects):
            return quantization.quantize_apply(model, scheme or Default8BitQuantizeScheme())
    finally:
        for layer, config in zip(annotations, originals):
            layer.quantize_config = config


def _tfmot_annotations(model: keras.Model) -> list[quantization.QuantizeAnnotate]:
    """The annotations in `model` that carry a tfmot-style config."""
    return [
        layer
        for layer in leaf_layers(model, (quantization.QuantizeAnnotate,))
        if isinstance(layer, quantization.QuantizeAnnotate)
        and isinstance(layer.quantize_config, QuantizeConfig)
    ]


def _annotated_classes(model: keras.Model) -> dict[str, type]:
    """Name -> class of each tfmot-style config and of the layer it annotates."""
    objects = {}
    for layer in _tfmot_annotations(model):
        for cls in (type(layer.quantize_config), type(layer.layer)):
            objects[cls.__name__] = cls
    return objects
