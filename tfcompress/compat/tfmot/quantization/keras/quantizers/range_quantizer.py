"""`RangeQuantizer`: what tfmot's built-in quantizers share, and their translation."""

from __future__ import annotations

from tfcompress import quantization
from tfcompress.compat.tfmot.quantization.keras.quantizers.quantizer import Quantizer


class RangeQuantizer(Quantizer):
    """tfmot's `num_bits` / `per_axis` / `symmetric` / `narrow_range` quantizers."""

    def __init__(self, num_bits: int, per_axis: bool, symmetric: bool, narrow_range: bool):
        self.num_bits = num_bits
        self.per_axis = per_axis
        self.symmetric = symmetric
        self.narrow_range = narrow_range

    def weights(self) -> quantization.WeightQuantizer:
        """The weight quantizer: TFLite's weights are symmetric on the narrow grid."""
        if not self.symmetric:
            raise ValueError(
                "TFLite's int8 weights are symmetric; use symmetric=True for a weight. "
                f"Received: {self!r}"
            )
        return quantization.WeightQuantizer(bits=self.num_bits, per_channel=self.per_axis)

    def activations(self) -> quantization.ActivationQuantizer:
        """The output quantizer: TFLite's activations are asymmetric int8."""
        return quantization.ActivationQuantizer(bits=self.num_bits)

    def get_config(self) -> dict:
        return {
            "num_bits": self.num_bits,
            "per_axis": self.per_axis,
            "symmetric": self.symmetric,
            "narrow_range": self.narrow_range,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
