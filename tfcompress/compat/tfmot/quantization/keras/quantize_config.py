"""tfmot's `QuantizeConfig` protocol, translated into tfcompress's `QuantizeConfig`."""

from __future__ import annotations

import keras

from tfcompress import quantization
from tfcompress.compat.tfmot.quantization.keras.quantizers.range_quantizer import RangeQuantizer


class QuantizeConfig(quantization.QuantizeConfig):
    """Base class of tfmot-style configs: say, given the layer, what to quantize.

    Subclasses implement tfmot's methods. `get_weights_and_quantizers(layer)`
    returns `(variable, quantizer)` pairs; `get_activations_and_quantizers` and
    `get_output_quantizers` say whether the layer's output is quantized.
    `quantize_apply` turns the config into tfcompress's `QuantizeConfig` for
    the built layer (`for_layer`): a weight quantizer becomes a
    `WeightQuantizer` (symmetric, narrow range: TFLite's int8 weight grid) and
    an activation or output quantizer an `ActivationQuantizer`.
    `set_quantize_weights` / `set_quantize_activations` are not called:
    tfcompress substitutes the quantized weights itself.
    """

    def __init__(self):
        super().__init__()

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list:
        raise NotImplementedError("QuantizeConfig subclasses implement this.")

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list:
        raise NotImplementedError("QuantizeConfig subclasses implement this.")

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list) -> None:
        """Unused: tfcompress substitutes the quantized weights itself."""

    def set_quantize_activations(
        self, layer: keras.layers.Layer, quantize_activations: list
    ) -> None:
        """Unused: tfcompress quantizes the layer's output itself."""

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        raise NotImplementedError("QuantizeConfig subclasses implement this.")

    def get_config(self) -> dict:
        return {}

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()!r})"

    def for_layer(self, layer: keras.layers.Layer) -> quantization.QuantizeConfig:
        """tfcompress's `QuantizeConfig` for the built `layer`."""
        weights = {
            variable.name: _quantizer(quantizer, layer, "get_weights_and_quantizers").weights()
            for variable, quantizer in self.get_weights_and_quantizers(layer)
        }
        outputs = [q for _, q in self.get_activations_and_quantizers(layer)]
        outputs += list(self.get_output_quantizers(layer))
        output = None
        if outputs:
            output = _quantizer(outputs[0], layer, "get_output_quantizers").activations()
        return quantization.QuantizeConfig(weights, output)


def _quantizer(quantizer, layer: keras.layers.Layer, method: str) -> RangeQuantizer:
    if not isinstance(quantizer, RangeQuantizer):
        raise ValueError(
            f"Layer {layer.name!r}: `{method}` returned {quantizer!r}; tfcompress runs "
            "LastValueQuantizer, MovingAverageQuantizer and AllValuesQuantizer (their "
            "TFLite grids), not custom quantizer algorithms."
        )
    return quantizer
