"""`BatchNormFolding`: a BatchNormalization folded into the linear layer before it, for QAT."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfcompress.quantization.registry import activation_name

FOLDABLE = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)
TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose)


def global_batch_moments(z: tf.Tensor, shift: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-channel mean and variance of `z` over the global batch: `tf.nn.moments` in one
    replica; under a `tf.distribute` strategy with several, from the replicas' summed
    `[count, sum, sum of squares]` of `z - shift` (one all-reduce; `shift`, the same on
    every replica, keeps the squares from cancelling), so every replica folds the same
    statistics, as one process training on the whole batch does."""
    axes = list(range(len(z.shape) - 1))
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.nn.moments(z, axes)
    shifted = z - tf.stop_gradient(tf.cast(shift, z.dtype))
    count = tf.cast(tf.reduce_prod(tf.shape(z)[:-1]), z.dtype)
    local = tf.stack(
        [
            tf.fill(tf.shape(shifted)[-1:], count),
            tf.reduce_sum(shifted, axes),
            tf.reduce_sum(tf.square(shifted), axes),
        ]
    )
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    mean = total[1] / total[0]
    variance = tf.maximum(total[2] / total[0] - tf.square(mean), 0.0)
    return mean + tf.stop_gradient(tf.cast(shift, z.dtype)), variance


class BatchNormFolding:
    """The maths of folding `batch_norm` into `layer`, as the int8 `.tflite` computes it.

    Inference: with `s = gamma / sqrt(moving_var + eps)` per output channel,
    the layer runs on `kernel * s` (`kernel_scale`) with no bias, then adds
    `(bias - moving_mean) * s + beta` (`folded_bias`): the folded form the
    converter writes into CONV_2D / FULLY_CONNECTED.

    Training (`batch_terms`): batch norm normalises with the batch's
    statistics, which also update the moving ones. The kernel stays folded
    with the moving variance (as it will be in the `.tflite`); multiplying the
    output by `sigma_moving / sigma_batch` and adding
    `beta + gamma * (bias - mean) / sigma_batch` gives what batch norm computes
    in training (Krishnamoorthi 2018, "Quantizing deep convolutional networks
    for efficient inference").

    `gamma` counts as 1 when the BN has `scale=False`, `beta` as 0 with
    `center=False`, the bias as 0 when the layer has none.

    Args:
        layer: A built or unbuilt Dense, Conv1D, Conv2D, Conv1DTranspose,
            Conv2DTranspose, DepthwiseConv1D or DepthwiseConv2D with a linear
            activation.
        batch_norm: The BatchNormalization after it.

    Raises:
        TypeError: `batch_norm` is not a BatchNormalization.
        ValueError: `layer` is not one of those classes, or not linear.

    Example:
        >>> from tfcompress.quantization.batch_norm_folding import BatchNormFolding
        >>> conv, bn = keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()
        >>> conv.build((None, 8, 8, 1))
        >>> folding = BatchNormFolding(conv, bn)
        >>> folding.build((None, 8, 8, 1))
        >>> tuple(folding.folded_bias().shape)
        (4,)
    """

    def __init__(self, layer: keras.layers.Layer, batch_norm: keras.layers.BatchNormalization):
        if not isinstance(batch_norm, keras.layers.BatchNormalization):
            raise TypeError(
                f"Layer {layer.name!r}: `batch_norm` must be a BatchNormalization layer. "
                f"Received: {batch_norm!r}"
            )
        if not isinstance(layer, FOLDABLE) or activation_name(layer) != "linear":
            raise ValueError(
                f"Layer {layer.name!r}: batch norm folds only into a linear "
                f"{[c.__name__ for c in FOLDABLE]} layer. Received: {type(layer).__name__} "
                f"with activation {activation_name(layer)!r}"
            )
        self.layer = layer
        self.batch_norm = batch_norm

    def build(self, input_shape) -> None:
        """Builds the BN on the layer's output shape (the layer must be built)."""
        if not self.batch_norm.built:
            self.batch_norm.build(self.layer.compute_output_shape(input_shape))

    def scale(self) -> tf.Tensor:
        """`gamma / sqrt(moving_var + eps)` per output channel."""
        bn = self.batch_norm
        inv = tf.math.rsqrt(bn.moving_variance.value + bn.epsilon)
        return inv * bn.gamma.value if bn.scale else inv

    def kernel_scale(self, kernel: keras.Variable) -> tf.Tensor:
        """`scale()` shaped to multiply `kernel` (a depthwise kernel's output channel is
        `[in, multiplier]`; a transposed convolution's kernel is `[..., out, in]`)."""
        depthwise = isinstance(
            self.layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
        )
        if isinstance(self.layer, TRANSPOSED):
            return tf.reshape(self.scale(), [-1, 1])
        return tf.reshape(self.scale(), kernel.shape[-2:] if depthwise else [-1])

    def folded_bias(self) -> tf.Tensor:
        """`(bias - moving_mean) * scale + beta`: the bias of the folded layer."""
        bn = self.batch_norm
        bias = self._layer_bias()
        folded = (bias - bn.moving_mean.value) * self.scale()
        return folded + bn.beta.value if bn.center else folded

    def batch_terms(self, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """In training: the output factor and bias that turn the folded layer into batch norm.

        Args:
            z: The layer's float output on the batch (its own bias included, no
                BN scale): it gives the batch's mean and variance, which also
                update the BN's moving statistics, as batch norm would. Under a
                `tf.distribute` strategy they are the global batch's (all
                replicas'), whatever the BN's `synchronized`: the kernel is folded
                with the moving variance, which must stay the same on every replica.

        Returns:
            `(sigma_moving / sigma_batch, beta + gamma * (bias - mean) / sigma_batch)`,
            with the moving variance as it was before the update.
        """
        bn = self.batch_norm
        moving_variance = tf.convert_to_tensor(bn.moving_variance.value)  # before the update
        mean, variance = global_batch_moments(z, bn.moving_mean.value)
        m = bn.momentum
        bn.moving_mean.assign(bn.moving_mean.value * m + tf.stop_gradient(mean) * (1 - m))
        bn.moving_variance.assign(moving_variance * m + tf.stop_gradient(variance) * (1 - m))
        inv_batch = tf.math.rsqrt(variance + bn.epsilon)
        correction = tf.sqrt(moving_variance + bn.epsilon) * inv_batch
        gamma = bn.gamma.value if bn.scale else 1.0
        batch_bias = (self._layer_bias() - mean) * gamma * inv_batch
        return correction, (batch_bias + bn.beta.value) if bn.center else batch_bias

    def _layer_bias(self):
        return self.layer.bias.value if self.layer.use_bias else 0.0
