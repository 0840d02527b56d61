"""Our own int8 kernels inside the TFLite/LiteRT interpreter (an external delegate)."""

from tfcompress.kernels.autotune import autotune, candidates
from tfcompress.kernels.delegate import KernelDelegate, load_delegate
from tfcompress.kernels.kernel_node import KernelNode
from tfcompress.kernels.library import (
    KernelsNotBuiltError,
    best_isa,
    host_kind,
    is_built,
    library_path,
)

__all__ = [
    "KernelDelegate",
    "KernelNode",
    "KernelsNotBuiltError",
    "autotune",
    "best_isa",
    "candidates",
    "host_kind",
    "is_built",
    "library_path",
    "load_delegate",
]
