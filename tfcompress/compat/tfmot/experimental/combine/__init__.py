"""`tfmot.experimental.combine`: QAT that keeps pruning's zeros or clustering's values."""

from tfcompress.compat.tfmot.experimental.combine.cluster_preserve_scheme import (
    Default8BitClusterPreserveQuantizeScheme,
)
from tfcompress.compat.tfmot.experimental.combine.prune_preserve_scheme import (
    Default8BitPrunePreserveQuantizeScheme,
)

__all__ = ["Default8BitClusterPreserveQuantizeScheme", "Default8BitPrunePreserveQuantizeScheme"]
