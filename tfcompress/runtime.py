"""The interpreter runtime: `ai_edge_litert` when installed, else `tf.lite`.

The lowest layer under `tfcompress.export` (which runs models) and `tfcompress.kernels`
(whose delegate must be loaded by the runtime that runs it), and how float data goes into
an interpreter's quantized input; it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

BACKENDS = ("auto", "litert", "tf")


class Runtime(NamedTuple):
    """One runtime's entry points."""

    name: str  # "litert" or "tf"
    interpreter: type  # the Interpreter class
    resolver: Any  # its OpResolverType enum
    load_delegate: Callable  # load_delegate(library_path, options) -> a delegate object


def runtime(backend: str = "auto") -> Runtime:
    """The runtime `backend` names: `ai_edge_litert.interpreter` for `"litert"` (or `"auto"`
    when installed), else `tf.lite`.

    Raises:
        ValueError: `backend` is not one of `BACKENDS`.
        ImportError: `backend="litert"` without the `ai-edge-litert` package.
    """
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}. Received: backend={backend!r}")
    if backend in ("auto", "litert"):
        try:  # an optional dependency
            from ai_edge_litert import interpreter as litert
        except ImportError:
            if backend == "litert":
                raise ImportError(
                    "backend='litert' needs the `ai-edge-litert` package: "
                    "pip install 'tfcompress[litert]'"
                ) from None
        else:
            return Runtime(
                "litert", litert.Interpreter, litert.OpResolverType, litert.load_delegate
            )
    return Runtime(
        "tf",
        tf.lite.Interpreter,
        tf.lite.experimental.OpResolverType,
        tf.lite.experimental.load_delegate,
    )


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """`x` (float) as the input tensor `detail` (from `get_input_details()`) takes it:
    quantized with its scale and zero point, clipped to its range, when it is a quantized
    integer tensor; cast to its type otherwise (float, or plain integer ids).

    Example:
        >>> detail = {"dtype": np.int8, "quantization": (0.5, -3)}
        >>> tfcompress.runtime.quantize_input(np.array([0.0, 1.0, 100.0]), detail)
        array([ -3,  -1, 127], dtype=int8)
    """
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    x = np.asarray(x)
    if dtype.kind not in "iu" or not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)
