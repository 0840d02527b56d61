"""Real datasets that ship inside PyPI packages, so nothing downloads at run time."""

from tfcompress.datasets.digits import load_digits
from tfcompress.datasets.mnist5k import load_mnist5k
from tfcompress.datasets.split import Split, stratified_split

__all__ = ["Split", "load_digits", "load_mnist5k", "stratified_split"]
