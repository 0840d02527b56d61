"""Weights and multiply-accumulates of a Dense/Conv2D kernel and of its factorized forms.

One place for the arithmetic, used by rank selection (`factorize`) and by the
report (`register_layer`). Shapes are channels-last and include the batch
dimension; biases are not counted here (they are the same before and after).
`ranks=None` means the original layer; `scheme` is None (original),
`"spatial"` (`kh x 1` to `rank` channels, then `1 x kw`) or `"channel"` (1x1
to `r_in`, `kh x kw` to `r_out`, 1x1 to `filters`).
"""

from __future__ import annotations

import math

Ranks = tuple[int, ...]
KernelShape = tuple[int, int, int, int]  # (kh, kw, in_channels, filters)


def _positions(shape: tuple) -> int:
    """Spatial positions of a channels-last activation (1 for a plain vector)."""
    return math.prod(int(d) for d in shape[1:-1])


def dense_weights(fan_in: int, units: int, ranks: Ranks | None) -> int:
    """Kernel weights of a Dense layer, or of `(x @ U) @ V` at `ranks = (rank,)`."""
    return fan_in * units if ranks is None else ranks[0] * (fan_in + units)


def dense_macs(fan_in: int, units: int, ranks: Ranks | None, output_shape: tuple) -> int:
    """MACs per sample: every output position multiplies by the kernel(s) once."""
    return _positions(output_shape) * dense_weights(fan_in, units, ranks)


def conv_weights(kernel_shape: KernelShape, scheme: str | None, ranks: Ranks | None) -> int:
    """Kernel weights of a Conv2D or of its factorized form."""
    kh, kw, cin, cout = kernel_shape
    if scheme is None:
        return kh * kw * cin * cout
    if scheme == "spatial":
        return ranks[0] * (kh * cin + kw * cout)
    r_in, r_out = ranks
    return cin * r_in + kh * kw * r_in * r_out + r_out * cout


def conv_macs(
    kernel_shape: KernelShape,
    scheme: str | None,
    ranks: Ranks | None,
    input_shape: tuple,
    output_shape: tuple,
) -> int:
    """MACs per sample of a Conv2D or of its factorized form."""
    kh, kw, cin, cout = kernel_shape
    out_positions = _positions(output_shape)
    if scheme is None:
        return out_positions * kh * kw * cin * cout
    if scheme == "spatial":
        (rank,) = ranks
        # The kh x 1 convolution keeps the input's width and takes the output's height.
        middle_positions = int(output_shape[1]) * int(input_shape[2])
        return middle_positions * kh * cin * rank + out_positions * kw * rank * cout
    r_in, r_out = ranks
    core_and_up = kh * kw * r_in * r_out + r_out * cout
    return _positions(input_shape) * cin * r_in + out_positions * core_and_up
