"""`tfmot.sparsity`: pruning."""

from tfcompress.compat.tfmot.sparsity import keras

__all__ = ["keras"]
