"""tfmot's `Default8BitClusterPreserveQuantizeScheme`."""

from tfcompress import quantization


class Default8BitClusterPreserveQuantizeScheme(quantization.QuantizeScheme):
    """Clustering-preserving QAT (CQAT), or PCQAT with `preserve_sparsity=True`.

    Args:
        preserve_sparsity: Also keep the zero weights of a pruned, then
            clustered model at zero (tfcompress's `"prune_cluster_preserve_8bit"`).
    """

    def __init__(self, preserve_sparsity: bool = True):
        super().__init__(weight_bits=8, preserve_sparsity=preserve_sparsity, preserve_clusters=True)
