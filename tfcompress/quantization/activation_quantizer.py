"""`ActivationQuantizer`: asymmetric per-tensor fake quantization with moving-average ranges."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfcompress.quantization.pool_rounding import exporting, rounded_like_average_pool
from tfcompress.quantization.quantizer import ACTIVATION_BITS, Quantizer, check_bits


def global_batch_range(lo: tf.Tensor, hi: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The min and max over every replica's batch under a `tf.distribute` strategy with
    several replicas, so the range is the global batch's, as in one process.

    One all-reduce, exact: each replica puts its `[lo, -hi]` in its own row of a zero
    `[replicas, 2]` tensor, the sum stacks every replica's pair unchanged (`x + 0` is
    `x`), and the smallest of each column is taken (an all-gather costs two collectives:
    the shapes, then the values).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return lo, hi
    rows = tf.one_hot(context.replica_id_in_sync_group, context.num_replicas_in_sync)
    pairs = rows[:, None] * tf.stack([lo, -hi])[None]  # [replicas, 2], zero but this row
    stacked = context.all_reduce(tf.distribute.ReduceOp.SUM, pairs)
    smallest = tf.reduce_min(stacked, axis=0)
    return smallest[0], -smallest[1]


class RangeTie:
    """Ties one quantized tensor's range to others that must share its int8 scale
    (`shared_ranges.py`): a follower fake-quantizes with its `leader`'s range variables; a
    leader copies its range into its `followers`' variables whenever it moves, so each layer
    saves the range it computes with. A plain holder, so a layer keeping one does not track
    another layer's variables as its own weights."""

    def __init__(self):
        self.leader: dict | None = None
        self.followers: list[dict] = []


@keras.saving.register_keras_serializable(package="tfcompress")
class ActivationQuantizer(Quantizer):
    """Asymmetric per-tensor fake quantization of an activation.

    The range `[min, max]` always contains 0 (so zero padding and ReLU zeros
    are exact). In training the first batch sets it, then each batch moves it
    by an exponential moving average of the batch's min and max; in inference
    the stored range is used. Under a `tf.distribute` strategy the min and max
    are the global batch's (all replicas'), so every replica moves the range
    alike, as training in one process does. With `learned=True` the range starts from the
    first batch and is then trained by gradient descent (the fake-quant op
    passes gradients to its min and max), instead of following the average.

    Args:
        bits: Activation bits; 8 (TFLite's int8 activations).
        ema_decay: Weight of the old range in the moving average.
        learned: Train the range instead of averaging it.

    Example:
        >>> from tfcompress.quantization import ActivationQuantizer
        >>> q = ActivationQuantizer()
        >>> layer = keras.layers.Layer()
        >>> ranges = q.build((None, 4), layer, "output")
        >>> y = q(keras.ops.ones((2, 4)), ranges, training=True)
        >>> tuple(y.shape)
        (2, 4)
    """

    def __init__(self, bits: int = 8, ema_decay: float = 0.99, learned: bool = False):
        self.bits = check_bits(bits, ACTIVATION_BITS, "bits")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={ema_decay!r}")
        self.ema_decay = float(ema_decay)
        self.learned = bool(learned)

    def build(self, shape: tuple, layer: keras.layers.Layer, name: str) -> dict:
        # Every replica assigns the same range (the global batch's) and the same flag, so
        # none is reduced across replicas when assigned (a "mean" all-reduce per write).
        def scalar(suffix, value, trainable=False):
            return layer.add_weight(
                name=f"{name}_{suffix}",
                shape=(),
                dtype="float32",
                trainable=trainable,
                initializer=keras.initializers.Constant(value),
                aggregation="only_first_replica",
            )

        return {
            "min": scalar("min", -6.0, self.learned),
            "max": scalar("max", 6.0, self.learned),
            "initialized": scalar("initialized", 0.0),
        }

    def __call__(self, x, variables: dict, training: bool = False, mean_window: int = 0):
        """Fake-quantizes `x`; with `mean_window`, `x` is an average pool's mean of that many
        values on this range's grid, its halves rounded as TFLite does (`pool_rounding.py`)."""
        x = tf.convert_to_tensor(x)
        lo_var, hi_var, init = variables["min"], variables["max"], variables["initialized"]
        if training:
            batch_lo = tf.stop_gradient(tf.minimum(tf.reduce_min(x), 0.0))
            batch_hi = tf.stop_gradient(tf.maximum(tf.reduce_max(x), 0.0))
            batch_lo, batch_hi = global_batch_range(batch_lo, batch_hi)
            seen = init.value > 0
            if self.learned:
                lo = tf.where(seen, lo_var.value, batch_lo)
                hi = tf.where(seen, hi_var.value, batch_hi)
            else:
                d = self.ema_decay
                lo = tf.where(seen, d * lo_var.value + (1 - d) * batch_lo, batch_lo)
                hi = tf.where(seen, d * hi_var.value + (1 - d) * batch_hi, batch_hi)
            lo_var.assign(tf.stop_gradient(lo))  # a learned range: set once, then trained
            hi_var.assign(tf.stop_gradient(hi))
            init.assign(1.0)
        else:
            lo, hi = lo_var.value, hi_var.value
        lo = tf.minimum(lo, 0.0)
        hi = tf.maximum(hi, lo + 1e-6)
        y = tf.quantization.fake_quant_with_min_max_vars(x, lo, hi, num_bits=self.bits)
        if mean_window and not exporting():
            pooled = rounded_like_average_pool(x, lo, hi, self.bits, mean_window)
            y = y + tf.stop_gradient(pooled - y)  # fake quantization's gradients
        return y

    def tied(self, x, variables: dict, tie: RangeTie, training: bool = False, mean_window: int = 0):
        """`__call__` for a tensor whose range is tied to others' (`RangeTie`)."""
        if tie.leader is not None:
            return self(x, tie.leader, training=False, mean_window=mean_window)
        y = self(x, variables, training, mean_window)
        if training:
            for follower in tie.followers:
                for key in ("min", "max", "initialized"):
                    follower[key].assign(variables[key].value)
        return y

    def get_config(self) -> dict:
        return {"bits": self.bits, "ema_decay": self.ema_decay, "learned": self.learned}
