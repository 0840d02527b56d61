"""`Quantizer`: the small protocol every weight and activation quantizer follows."""

from __future__ import annotations

import keras

WEIGHT_BITS = (4, 8)
ACTIVATION_BITS = (8,)


def check_bits(bits: int, supported: tuple[int, ...], argument: str, where: str = "") -> int:
    """Returns `bits` when TFLite can run it, otherwise raises naming the argument."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in supported:
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}`{argument}` must be one of {supported} (what TFLite runs). "
            f"Received: {argument}={bits!r}"
        )
    return bits


class Quantizer:
    """Fake-quantizes a tensor: rounds it to the grid TFLite will use, in float.

    A quantizer is a small serializable object, not a layer: the layer that owns
    the tensor calls `build` once to create the quantizer's variables (ranges)
    on itself, then calls the quantizer on the tensor with those variables.
    Gradients pass straight through the rounding (straight-through estimator).

    Subclasses implement `build`, `__call__` and `get_config`.
    """

    def build(self, shape: tuple, layer: keras.layers.Layer, name: str) -> dict:
        """Creates the quantizer's variables on `layer` and returns them by name."""
        return {}

    def __call__(self, x, variables: dict, training: bool = False):
        raise NotImplementedError("Quantizer subclasses implement `__call__`.")

    def get_config(self) -> dict:
        raise NotImplementedError("Quantizer subclasses implement `get_config`.")

    @classmethod
    def from_config(cls, config: dict) -> Quantizer:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
