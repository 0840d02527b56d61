"""What one layer costs under one option: weights, MACs, int8 bytes and measured latency.

Bytes are those of the layer's weights in an int8 `.tflite`: each kernel as int8 in
TFLite's layout (`[out, in]` rows for FULLY_CONNECTED and CONV_2D, channel-last for
DEPTHWISE_CONV_2D; 4-bit values still in int8 containers), one float32 scale per output
channel, and the bias as int32 (its float32 bits stand in for the int32 values, which
depend on the input's scale). `gzip_bytes` is their gzip size at level 9, the level
`tfcompress.reporting.gzip_size` measures whole files at (level 6 came out 12-32% over it on
pruned layers at 90-99% sparsity, so plans overshot their size targets). Level 9 takes 3-10x
longer than level 6 on sparse weights, so above `SAMPLE_BYTES` the layer is gzipped at level 6
and scaled by the level 9 / level 6 ratio of `SAMPLE_PIECES` evenly spaced pieces of it: within
0.5% of level 9 on the small CNN's fc1 (9216x128) at 50-99% sparsity, 8 and 4 bits, about a
third of level 9's time (AMD EPYC Zen 4). A factorized layer stores two kernels, `[rank, in]` and
`[units, rank]`. The baseline (the layer unchanged) is counted as float32.

MACs are the multiply-accumulates per sample with a non-zero weight: the report's count
(`tfcompress.reporting`) times the kernels' density, `rank * (in + units)` per position
for a factorized Dense.

Latency is that of the layer alone as an int8 `.tflite` at batch 1 (see
`tfcompress.planning.latency_cache`). The interpreter's kernels run pruned weights dense,
so every prune option has the dense layer's default latency; our kernels skip the empty
16x4 blocks, so 16x4 pruning is measured with them at each block density, the other
structures (unstructured, 2:4, channels) take the dense layer's figure. A rank is measured
as its two factors, and 4 bits as the export writes them: the layer quantization-aware
(`quantize_model(precision=4)`, ranges from one training-mode pass over the calibration
samples) and exported from its ranges, its kernel a packed INT4 tensor, which our kernels
do not claim. In the default interpreter 4 bits ran 3.5x slower than 8 for a 3x3 Conv2D
16 -> 32 on 16x16, 2.4x for a 1x1 one 16 -> 96, 8x for a 3x3 DepthwiseConv2D on 16x16x96,
and 0.85x for a Dense 512 -> 256 (AMD EPYC Zen 5, one core, medians of 3). One export is timed
per distinct key (op, shapes, configuration, variant), and each is measured once per CPU.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math

import keras
import numpy as np

from tfcompress.core.blocks import block_density
from tfcompress.core.weights import to_matrix
from tfcompress.export.tflite import export_tflite
from tfcompress.factorization import FactorizedDense
from tfcompress.planning.changes import (
    changed_kernels,
    channel_rows,
    is_depthwise,
    kernel_svd,
    kernel_variables,
    quantize_rows,
    rank_factors,
)
from tfcompress.planning.latency_cache import LatencyCache, measure_latency
from tfcompress.planning.options import LayerOption
from tfcompress.quantization import quantize_model
from tfcompress.reporting.layer_specs import lookup

CALIBRATION_SAMPLES = 8
GZIP_LEVEL = 9  # as `tfcompress.reporting.gzip_size`
SAMPLE_BYTES = 1 << 18  # larger weights: level 6, scaled by level 9 / 6 on a sample this big
SAMPLE_PIECES = 8
# Configuration keys that do not change how fast a layer runs.
_IGNORED_CONFIG = ("name", "trainable", "dtype", "initializer", "regularizer", "constraint")


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """The static costs of one layer under one option (see the module docstring)."""

    params: int
    nonzeros: int
    macs: int
    bytes: int
    gzip_bytes: int


def _np(weight) -> np.ndarray:
    return keras.ops.convert_to_numpy(weight)


def layer_shapes(layer: keras.layers.Layer) -> tuple[tuple, tuple]:
    """`(input_shape, output_shape)` of a built layer, batch dimension included."""
    input_shape = tuple(layer.get_build_config()["input_shape"])
    return input_shape, tuple(layer.compute_output_shape(input_shape))


def dense_macs(layer: keras.layers.Layer) -> int:
    """The layer's multiply-accumulates per sample as the report counts them (all weights)."""
    return int(lookup(layer).macs(layer, *layer_shapes(layer)))


def _bias(layer: keras.layers.Layer) -> np.ndarray:
    bias = getattr(layer, "bias", None)
    return np.zeros(0, np.float32) if bias is None else _np(bias).astype(np.float32)


def _int8_parts(rows: np.ndarray, bits: int, channel_last: bool) -> list[bytes]:
    """An `[out, fan-in]` kernel as the int8 `.tflite` stores it: the integers, the scales."""
    q, scale = quantize_rows(rows, bits)
    stored = q.T if channel_last else q
    return [np.ascontiguousarray(stored).astype(np.int8).tobytes(), scale.astype("<f4").tobytes()]


def _gzip(content: bytes, level: int) -> int:
    return len(gzip.compress(content, compresslevel=level, mtime=0))


def gzip_bytes(content: bytes) -> int:
    """`content`'s gzip size at `GZIP_LEVEL` (level 9): exact up to `SAMPLE_BYTES`, above
    that level 6's size times the level 9 / level 6 ratio of `SAMPLE_PIECES` evenly spaced
    pieces (see the module docstring).

    Example:
        >>> import gzip
        >>> from tfcompress.planning.costs import gzip_bytes
        >>> gzip_bytes(bytes(1000)) == len(gzip.compress(bytes(1000), 9, mtime=0))
        True
    """
    if len(content) <= SAMPLE_BYTES:
        return _gzip(content, GZIP_LEVEL)
    step, size = len(content) // SAMPLE_PIECES, SAMPLE_BYTES // SAMPLE_PIECES
    sample = b"".join(content[i * step : i * step + size] for i in range(SAMPLE_PIECES))
    return round(_gzip(content, 6) * _gzip(sample, GZIP_LEVEL) / _gzip(sample, 6))


def _cost(parts: list[bytes], params: int, nonzeros: int, macs: int) -> LayerCost:
    content = b"".join(parts)
    return LayerCost(params, nonzeros, macs, len(content), gzip_bytes(content))


def baseline_cost(layer: keras.layers.Layer) -> LayerCost:
    """The unchanged layer, its weights as float32 in TFLite's layout."""
    kernels = [_np(v) for v in kernel_variables(layer)]
    bias = _bias(layer)
    parts = []
    for i, kernel in enumerate(kernels):
        depthwise = is_depthwise(layer, i)
        rows = channel_rows(kernel, depthwise)
        parts.append(np.ascontiguousarray(rows.T if depthwise else rows).astype("<f4").tobytes())
    return _kernel_cost(layer, kernels, parts + [bias.astype("<f4").tobytes()])


def _kernel_cost(layer, kernels: list[np.ndarray], parts: list[bytes]) -> LayerCost:
    bias = _bias(layer)
    size = sum(k.size for k in kernels)
    nonzero = sum(int(np.count_nonzero(k)) for k in kernels)
    macs = round(dense_macs(layer) * nonzero / size) if size else 0
    return _cost(parts, size + bias.size, nonzero + int(np.count_nonzero(bias)), macs)


def option_cost(
    layer: keras.layers.Layer,
    option: LayerOption,
    kernels: list[np.ndarray] | None = None,
    svd: tuple | None = None,
) -> LayerCost:
    """The layer under `option`, stored int8 (see the module docstring).

    Args:
        layer: A built layer `option` fits.
        option: The change.
        kernels: `changed_kernels(layer, option)` when already computed (not used for ranks).
        svd: For a rank: the kernel's `kernel_svd` when already computed.
    """
    bias = _bias(layer)
    bias_bytes = bias.astype("<f4").tobytes()
    if option.kind == "rank":
        svd = kernel_svd(_np(layer.kernel)) if svd is None else svd
        u, v = rank_factors(svd, option.rank)
        parts = _int8_parts(u.T, 8, False) + _int8_parts(v.T, 8, False) + [bias_bytes]
        _, output_shape = layer_shapes(layer)
        macs = math.prod(output_shape[1:-1]) * option.rank * sum(layer.kernel.shape)
        nonzero = int(np.count_nonzero(u) + np.count_nonzero(v) + np.count_nonzero(bias))
        return _cost(parts, u.size + v.size + bias.size, nonzero, int(macs))
    kernels = changed_kernels(layer, option) if kernels is None else kernels
    bits = option.bits if option.kind == "bits" else 8
    parts = []
    for i, kernel in enumerate(kernels):
        depthwise = is_depthwise(layer, i)
        parts += _int8_parts(channel_rows(kernel, depthwise), bits, depthwise)
    return _kernel_cost(layer, kernels, parts + [bias_bytes])


def _layer_key(layer: keras.layers.Layer) -> str:
    config = {
        k: v
        for k, v in layer.get_config().items()
        if not any(word in k for word in _IGNORED_CONFIG)
    }
    input_shape, _ = layer_shapes(layer)
    text = json.dumps(config, sort_keys=True, default=str)
    return f"{type(layer).__name__}|in={list(input_shape[1:])}|{text}"


def latency_keys(
    layer: keras.layers.Layer, option: LayerOption | None, kernels: list[np.ndarray] | None
) -> tuple[str, str]:
    """`(default_key, kernels_key)`: which measurement gives the option's `latency_ms` and
    which its `latency_ms_kernels` (the dense layer's for all but ranks, 4 bits and 16x4
    pruning)."""
    base = _layer_key(layer)
    if option is not None and option.kind == "rank":
        return f"{base}|rank={option.rank}", f"{base}|rank={option.rank}"
    if option is not None and option.kind == "bits" and option.bits == 4:
        return f"{base}|bits4", f"{base}|bits4"
    if option is not None and option.kind == "prune" and option.structure == "16x4":
        density = block_density(to_matrix(kernels[0]))
        return f"{base}|dense", f"{base}|blocks16x4={density:.2f}"
    return f"{base}|dense", f"{base}|dense"


def _single_layer_model(layer: keras.layers.Layer, option, kernels) -> keras.Model:
    """The layer alone on a batch-1 input, holding the option's weights."""
    input_shape, _ = layer_shapes(layer)
    inputs = keras.Input(input_shape[1:], batch_size=1)
    if option is not None and option.kind == "rank":
        copy = FactorizedDense.from_dense(layer, rank=option.rank)
        return keras.Model(inputs, copy(inputs))
    copy = type(layer).from_config(layer.get_config())
    model = keras.Model(inputs, copy(inputs))
    copy.set_weights([_np(w) for w in layer.weights])
    if kernels is not None:
        for variable, value in zip(kernel_variables(copy), kernels):
            variable.assign(value)
    return model


def single_layer_tflite(layer: keras.layers.Layer, option, kernels) -> tuple[bytes, np.ndarray]:
    """The layer alone (with the option's weights) as an int8 `.tflite`, 4-bit weights as
    `compress` exports them (from quantization-aware ranges), and the calibration samples."""
    input_shape, _ = layer_shapes(layer)
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((CALIBRATION_SAMPLES, *input_shape[1:])).astype("float32")
    model = _single_layer_model(layer, option, kernels)
    if option is None or not (option.kind == "bits" and option.bits == 4):
        return export_tflite(model, mode="int8", representative_data=samples), samples
    quantized = quantize_model(model, precision={layer.name: 4})
    quantized(samples, training=True)  # the first training batch sets the activation ranges
    return export_tflite(quantized, mode="int8"), samples


def measure_layer(layer: keras.layers.Layer, option, kernels) -> dict:
    """Exports the layer alone (with the option's weights) as int8 and times it."""
    content, samples = single_layer_tflite(layer, option, kernels)
    return measure_latency(content, samples[:1])


def layer_latencies(
    layer: keras.layers.Layer,
    options: list[LayerOption | None],
    kernels: dict,
    cache: LatencyCache,
) -> dict[str, tuple[float | None, float | None]]:
    """`{key: (latency_ms, latency_ms_kernels)}` for each option of `layer` (`"baseline"` for
    None), measuring only the keys `cache` lacks.

    Args:
        layer: The layer.
        options: Its options; None is the unchanged layer.
        kernels: `{option key: changed_kernels(layer, option)}` for the options (prune, bits).
        cache: Where measured latencies are kept.
    """
    found = {}
    for option in options:
        name = "baseline" if option is None else option.key
        changed = None if option is None else kernels.get(option.key)
        default_key, kernels_key = latency_keys(layer, option, changed)
        for key in dict.fromkeys((default_key, kernels_key)):
            if cache.get(key) is None:
                dense = key.endswith("|dense")
                cache.put(key, measure_layer(layer, None if dense else option, changed))
        found[name] = (
            cache.get(default_key)["latency_ms"],
            cache.get(kernels_key)["latency_ms_kernels"],
        )
    return found
