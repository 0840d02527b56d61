"""Our own int8 kernels inside the TFLite/LiteRT interpreter (an external delegate)."""

from tfcompress.kernels.compare import compare_kernels, format_comparison
from tfcompress.kernels.delegate import KernelDelegate, load_delegate
from tfcompress.kernels.library import KernelsNotBuiltError, best_isa, is_built, library_path

__all__ = [
    "KernelDelegate",
    "KernelsNotBuiltError",
    "best_isa",
    "compare_kernels",
    "format_comparison",
    "is_built",
    "library_path",
    "load_delegate",
]
