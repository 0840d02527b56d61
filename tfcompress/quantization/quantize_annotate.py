"""`QuantizeAnnotate`: marks a layer for `quantize_apply` without changing what it computes."""

from __future__ import annotations

import keras

from tfcompress.quantization.quantize_config import QuantizeConfig


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizeAnnotate(keras.layers.Wrapper):
    """Marks `layer` for quantization-aware training; computes exactly what `layer` does.

    Made by `quantize_annotate_layer` and `quantize_annotate_model`;
    `quantize_apply` replaces each annotated layer by a `QuantizeWrapper`.

    Args:
        layer: The layer to quantize.
        quantize_config: How to quantize it; None uses the registry's config.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self, layer: keras.layers.Layer, quantize_config: QuantizeConfig | None = None, **kwargs
    ):
        if isinstance(layer, QuantizeAnnotate):
            raise ValueError(f"Layer {layer.name!r} is already annotated for quantization.")
        kwargs.setdefault("name", f"quant_annotate_{layer.name}")
        super().__init__(layer, **kwargs)
        if isinstance(quantize_config, dict):
            quantize_config = keras.saving.deserialize_keras_object(quantize_config)
        if quantize_config is not None and not isinstance(quantize_config, QuantizeConfig):
            raise TypeError(
                f"Layer {layer.name!r}: `quantize_config` must be a QuantizeConfig or None. "
                f"Received: {quantize_config!r}"
            )
        self.quantize_config = quantize_config

    def build(self, input_shape=None):
        self.built = True  # the layer builds on its first call, from all its inputs

    def call(self, inputs, *args, **kwargs):
        return self.layer(inputs, *args, **kwargs)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "quantize_config": keras.saving.serialize_keras_object(self.quantize_config),
        }


def unannotated(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer an annotation marks (any other layer as it is)."""
    return layer.layer if isinstance(layer, QuantizeAnnotate) else layer
