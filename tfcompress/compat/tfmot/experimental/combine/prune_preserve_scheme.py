"""tfmot's `Default8BitPrunePreserveQuantizeScheme`."""

from tfcompress import quantization


class Default8BitPrunePreserveQuantizeScheme(quantization.QuantizeScheme):
    """Pruning-preserving QAT (PQAT): tfcompress's `"prune_preserve_8bit"` scheme."""

    def __init__(self):
        super().__init__(weight_bits=8, preserve_sparsity=True)
