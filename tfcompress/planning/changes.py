"""What one `LayerOption` does to one layer's weights, without retraining.

* `prune`: the magnitude mask of the option's structure (`compute_masks` on `|w|`, or
  `channel_masks` for whole channels), as `prune_low_magnitude` computes it.
* `bits`: symmetric per-output-channel fake quantization, the Keras/TFLite int8
  convention: `scale = max|w| / (2^(b-1) - 1)` per output channel, `w -> round(w / scale) * scale`.
* `rank`: the truncated-SVD reconstruction `U @ V` of a Dense kernel, the factors
  `FactorizedDense.from_dense` starts from.
"""

from __future__ import annotations

import keras
import numpy as np

from tfcompress.planning.options import STRUCTURE_ARGS, LayerOption
from tfcompress.pruning.masks import channel_masks, compute_masks


def kernel_variables(layer: keras.layers.Layer) -> list:
    """The kernels an option changes: a separable conv's depthwise and pointwise ones,
    every other layer's `kernel`."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        return [layer.depthwise_kernel, layer.pointwise_kernel]
    return [layer.kernel]


def is_depthwise(layer: keras.layers.Layer, index: int) -> bool:
    """Whether kernel `index` of `layer` is a depthwise `[*window, in, multiplier]` kernel
    (its output channels are `in * multiplier`, TFLite stores it channel-last)."""
    return isinstance(layer, keras.layers.DepthwiseConv2D) or (
        isinstance(layer, keras.layers.SeparableConv2D) and index == 0
    )


def channel_rows(value: np.ndarray, depthwise: bool) -> np.ndarray:
    """The kernel as `[output channel, fan-in]` rows, each quantized with its own scale."""
    if depthwise:  # [*window, in, multiplier]: channel in * multiplier, taps of the window
        return value.reshape(-1, value.shape[-2] * value.shape[-1]).T
    return value.reshape(-1, value.shape[-1]).T


def quantize_rows(rows: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """`(q, scale)`: integers in `[-(2^(b-1) - 1), 2^(b-1) - 1]` per row and each row's scale
    (`max|row| / (2^(b-1) - 1)`; 1 for an all-zero row, whose integers are all 0)."""
    qmax = 2 ** (bits - 1) - 1
    scale = np.abs(rows).max(axis=1, keepdims=True).astype(np.float64) / qmax
    scale = np.where(scale > 0, scale, 1.0)
    scaled = rows / scale
    q = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -qmax, qmax)  # half away from 0
    return q, scale[:, 0]


def fake_quant(value: np.ndarray, bits: int, depthwise: bool = False) -> np.ndarray:
    """`value` rounded to `bits`-bit integers per output channel and scaled back.

    Example:
        >>> from tfcompress.planning.changes import fake_quant
        >>> kernel = np.array([[0.7, -1.0], [0.26, 2.0]])  # [in, out]: one scale per column
        >>> np.round(fake_quant(kernel, bits=4) / [0.7 / 7, 2.0 / 7], 6)  # integers times scales
        array([[ 7., -4.],
               [ 3.,  7.]])
    """
    rows = channel_rows(value, depthwise)
    q, scale = quantize_rows(rows, bits)
    return (q * scale[:, None]).T.reshape(value.shape).astype(value.dtype)


def prune_mask(kernel: np.ndarray, option: LayerOption) -> np.ndarray:
    """The mask (1 keep, 0 prune) `option` gives `kernel`, in the kernel's shape."""
    args = STRUCTURE_ARGS[option.structure]
    if "channel_norm" in args:
        return channel_masks([kernel], option.sparsity, args["channel_norm"])[0]
    return compute_masks(
        [np.abs(kernel)],
        option.sparsity,
        block_size=args.get("block_size", (1, 1)),
        sparsity_m_by_n=args.get("sparsity_m_by_n"),
    )[0]


def kernel_svd(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(u, s, vt)`: the thin SVD of a Dense kernel in float64, computed once for all ranks."""
    return np.linalg.svd(np.asarray(kernel, dtype=np.float64), full_matrices=False)


def rank_factors(svd: tuple, rank: int, dtype="float32") -> tuple[np.ndarray, np.ndarray]:
    """`(U [in, rank], V [rank, units])` from `kernel_svd`: the best rank-`rank` approximation,
    each factor carrying the square root of the singular values (as
    `FactorizedDense.from_dense` splits them)."""
    u, s, vt = svd
    root = np.sqrt(s[:rank])
    return (u[:, :rank] * root).astype(dtype), (root[:, None] * vt[:rank]).astype(dtype)


def changed_kernels(
    layer: keras.layers.Layer, option: LayerOption, svd: tuple | None = None
) -> list[np.ndarray]:
    """The new value of each of `kernel_variables(layer)` under `option` (for a rank, the
    product of the factors; `svd`: the kernel's `kernel_svd` when already computed)."""
    values = [keras.ops.convert_to_numpy(v) for v in kernel_variables(layer)]
    if option.kind == "prune":
        return [values[0] * prune_mask(values[0], option)]
    if option.kind == "bits":
        return [fake_quant(v, option.bits, is_depthwise(layer, i)) for i, v in enumerate(values)]
    u, v = rank_factors(kernel_svd(values[0]) if svd is None else svd, option.rank)
    return [u @ v]
