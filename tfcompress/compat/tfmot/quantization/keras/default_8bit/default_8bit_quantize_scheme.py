"""tfmot's `Default8BitQuantizeScheme`."""

from tfcompress import quantization


class Default8BitQuantizeScheme(quantization.QuantizeScheme):
    """8-bit weights and activations: tfcompress's `"default_8bit"` scheme."""

    def __init__(self):
        super().__init__(weight_bits=8)
