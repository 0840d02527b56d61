"""tfmot's `Quantizer` base class."""

from __future__ import annotations


class Quantizer:
    """Base class of tfmot's quantizers.

    Custom subclasses (tfmot's `build(tensor_shape, name, layer)` /
    `__call__(inputs, training, weights)` algorithms) are not run by
    tfcompress: `quantize_apply` raises naming the layer. The built-in range
    quantizers translate into tfcompress's.
    """

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Quantizer:
        return cls(**config)
