"""`WeightQuantizer`: symmetric narrow-range weight fake quantization, per tensor or channel."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfcompress.quantization.quantizer import WEIGHT_BITS, Quantizer, check_bits

_EPS = 1e-8  # keeps the range of an all-zero (pruned) channel positive


@keras.saving.register_keras_serializable(package="tfcompress")
class WeightQuantizer(Quantizer):
    """Symmetric fake quantization of a weight from its current range ("last value").

    The range is `[-max|w|, max|w|]`, per tensor or per output channel, and
    the grid is narrow (`-(2^(b-1) - 1) .. 2^(b-1) - 1`, zero exactly
    representable), which is what TFLite's int8 kernels expect of weights.
    The range is recomputed from the weight on every call, so nothing needs
    calibrating and the exported constant folds to the same grid.

    Args:
        bits: 8, or 4 (TFLite stores 4-bit weights as packed INT4 tensors).
        per_channel: One range per output channel instead of one per tensor.
        channel_dims: How many trailing axes form the output channel: 1 for
            Conv2D's `[kh, kw, in, out]`, 2 for DepthwiseConv2D's
            `[kh, kw, in, multiplier]` (TFLite's channel is `in * multiplier`).

    Example:
        >>> from tfcompress.quantization import WeightQuantizer
        >>> q = WeightQuantizer(bits=4, per_channel=True)
        >>> q(keras.ops.ones((3, 3, 8, 16)), {}).shape
        TensorShape([3, 3, 8, 16])
    """

    def __init__(self, bits: int = 8, per_channel: bool = True, channel_dims: int = 1):
        self.bits = check_bits(bits, WEIGHT_BITS, "bits")
        self.per_channel = bool(per_channel)
        if not isinstance(channel_dims, int) or channel_dims < 1:
            raise ValueError(
                "`channel_dims` must be a positive integer. "
                f"Received: channel_dims={channel_dims!r}"
            )
        self.channel_dims = channel_dims

    def __call__(self, w, variables: dict | None = None, training: bool = False):
        w = tf.convert_to_tensor(w)
        if not self.per_channel:
            m = tf.maximum(tf.reduce_max(tf.abs(w)), _EPS)
            return tf.quantization.fake_quant_with_min_max_vars(
                w, -m, m, num_bits=self.bits, narrow_range=True
            )
        shape = tf.shape(w)
        rank = w.shape.rank
        if rank <= self.channel_dims:
            raise ValueError(
                f"A per-channel weight needs more than channel_dims={self.channel_dims} axes. "
                f"Received a weight of shape {tuple(w.shape)}."
            )
        channels = tf.reduce_prod(shape[rank - self.channel_dims :])
        flat = tf.reshape(w, tf.concat([shape[: rank - self.channel_dims], [channels]], 0))
        m = tf.maximum(tf.reduce_max(tf.abs(flat), axis=list(range(flat.shape.rank - 1))), _EPS)
        q = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            flat, -m, m, num_bits=self.bits, narrow_range=True
        )
        return tf.reshape(q, shape)

    def with_bits(self, bits: int) -> WeightQuantizer:
        return WeightQuantizer(bits, self.per_channel, self.channel_dims)

    def get_config(self) -> dict:
        return {
            "bits": self.bits,
            "per_channel": self.per_channel,
            "channel_dims": self.channel_dims,
        }
