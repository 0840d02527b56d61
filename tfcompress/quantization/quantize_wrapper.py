"""`QuantizeWrapper`: runs a layer on fake-quantized weights and fake-quantizes its output."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import tensorflow as tf

from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.registry import (
    FIXED_RANGE_ACTIVATIONS,
    FUSED_ACTIVATIONS,
    activation_name,
    default_quantize_config,
    unregistered_error,
)

_FOLDABLE = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
             keras.layers.DepthwiseConv2D)  # fmt: skip


def _linear_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """`layer` with `activation="linear"` (same weights when built); the original is untouched."""
    copy = layer.__class__.from_config({**layer.get_config(), "activation": "linear"})
    if layer.built:
        copy.build_from_config(layer.get_build_config())
        copy.set_weights(layer.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizeWrapper(keras.layers.Wrapper):
    """Quantization-aware training of one layer.

    In `call`, the weights named by the `QuantizeConfig` are fake-quantized
    (symmetric, narrow range, per channel for convolutions), the layer runs on
    them through `stateless_call`, and the output is fake-quantized with a
    moving-average range. Gradients pass straight through the rounding, so
    `fit` trains the float weights while the forward pass sees exactly the
    values the int8 `.tflite` will hold.

    Activations: ReLU and ReLU6 stay inside the layer (TFLite fuses them into
    CONV_2D / FULLY_CONNECTED, and the output range is taken after them). Any
    other activation is split off: the layer runs linear, its output is
    quantized, then the activation runs (and is quantized again unless it is
    softmax, sigmoid or tanh, whose int8 ranges TFLite fixes).

    Batch-norm folding: with `batch_norm`, the wrapped Dense/Conv/Depthwise
    layer (linear, no activation) absorbs the BatchNormalization that follows
    it: `kernel * gamma / sqrt(moving_var + eps)` is quantized and the bias
    becomes `(bias - moving_mean) * gamma / sqrt(moving_var + eps) + beta`,
    which is the folded form the converter writes into the int8 CONV_2D. In
    training the output is corrected to batch statistics, which also update
    the moving ones, as batch norm would (see `_batch_folding`).

    Collaborative optimization: `preserve_sparsity` keeps every weight that
    was zero when the layer was wrapped at exactly zero (a pruned model keeps
    its zeros and its block or N:M structure through QAT and conversion);
    `preserve_clusters` trains one value per distinct weight value (the
    centroids of a clustered model), so the number of distinct values never
    grows.

    Args:
        layer: The layer to quantize.
        quantize_config: A `QuantizeConfig`; None takes the registry's.
        activation: The split-off activation (set by the wrapper itself; pass
            it only when re-creating from a config).
        batch_norm: A BatchNormalization layer to fold in, or None.
        preserve_sparsity: Keep zero weights at zero.
        preserve_clusters: Train the distinct weight values as shared centroids.
        num_centroids: Centroid count per quantized weight (recorded for saving).
        **kwargs: Base layer arguments.

    Example:
        >>> wrapper = QuantizeWrapper(keras.layers.Conv2D(8, 3, activation="relu"))
        >>> y = wrapper(np.zeros((1, 8, 8, 1), "float32"), training=True)
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        quantize_config: QuantizeConfig | None = None,
        activation: str | None = None,
        batch_norm: keras.layers.BatchNormalization | None = None,
        preserve_sparsity: bool = False,
        preserve_clusters: bool = False,
        num_centroids: list[int] | None = None,
        **kwargs,
    ):
        if isinstance(layer, QuantizeWrapper):
            raise ValueError(
                f"Layer {layer.name!r} is already quantized; call `strip_quantization` first."
            )
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"`layer` must be a keras.layers.Layer. Received: type {type(layer).__name__}"
            )
        if isinstance(quantize_config, dict):
            quantize_config = keras.saving.deserialize_keras_object(quantize_config)
        if quantize_config is None:
            quantize_config = default_quantize_config(layer)
            if quantize_config is None:
                raise unregistered_error(layer)
        if not isinstance(quantize_config, QuantizeConfig):
            raise TypeError(
                f"Layer {layer.name!r}: `quantize_config` must be a QuantizeConfig. "
                f"Received: {quantize_config!r}"
            )
        own = activation_name(layer)
        if activation is None and own is not None and own not in FUSED_ACTIVATIONS:
            activation, layer = own, _linear_copy(layer)
        if isinstance(batch_norm, dict):
            batch_norm = keras.saving.deserialize_keras_object(batch_norm)
        if batch_norm is not None:
            if not isinstance(batch_norm, keras.layers.BatchNormalization):
                raise TypeError(
                    f"Layer {layer.name!r}: `batch_norm` must be a BatchNormalization layer. "
                    f"Received: {batch_norm!r}"
                )
            if not isinstance(layer, _FOLDABLE) or activation_name(layer) != "linear":
                raise ValueError(
                    f"Layer {layer.name!r}: batch norm folds only into a linear "
                    f"{[c.__name__ for c in _FOLDABLE]} layer. Received: {type(layer).__name__} "
                    f"with activation {activation_name(layer)!r}"
                )
        kwargs.setdefault("name", f"quant_{layer.name}")
        super().__init__(layer, **kwargs)
        self.quantize_config = quantize_config
        self.activation_name = activation
        self.activation = keras.activations.get(activation) if activation else None
        self.batch_norm = batch_norm
        self.preserve_sparsity = bool(preserve_sparsity)
        self.preserve_clusters = bool(preserve_clusters)
        self.num_centroids = None if num_centroids is None else [int(n) for n in num_centroids]
        self._takes_training = "training" in inspect.signature(layer.call).parameters

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        if self.batch_norm is not None and not self.batch_norm.built:
            self.batch_norm.build(self.layer.compute_output_shape(input_shape))
        config = self.quantize_config
        quantized = [w for w in self.layer.weights if w.name in config.weight_quantizers]
        missing = set(config.weight_quantizers) - {w.name for w in quantized}
        if missing:
            raise ValueError(
                f"Layer {self.layer.name!r}: its QuantizeConfig names weights {sorted(missing)} "
                f"that the layer does not have; it has {[w.name for w in self.layer.weights]}."
            )
        self._quantized = [(w, config.weight_quantizers[w.name]) for w in quantized]
        values = [keras.ops.convert_to_numpy(w) for w in quantized]
        self.masks = [
            self.add_weight(
                name=f"sparsity_mask_{i}", shape=w.shape, trainable=False, dtype="float32",
                initializer=keras.initializers.Constant(value != 0),
            )
            for i, (w, value) in enumerate(zip(quantized, values))
        ] if self.preserve_sparsity else []  # fmt: skip
        self.centroids, self.indices = [], []
        if self.preserve_clusters:
            if self.num_centroids is None:
                self.num_centroids = [int(np.unique(v).size) for v in values]
            for i, (w, value, n) in enumerate(zip(quantized, values, self.num_centroids)):
                unique, inverse = np.unique(value, return_inverse=True)
                if unique.size != n:  # re-created from a config: the saved values load later
                    unique, inverse = np.zeros(n), np.zeros(value.shape)
                self.centroids.append(self.add_weight(
                    name=f"centroids_{i}", shape=(n,), dtype="float32",
                    initializer=keras.initializers.Constant(unique),
                ))  # fmt: skip
                self.indices.append(self.add_weight(
                    name=f"cluster_indices_{i}", shape=w.shape, dtype="int32", trainable=False,
                    initializer=keras.initializers.Constant(inverse.reshape(value.shape)),
                ))  # fmt: skip
                w.trainable = False  # the centroids train instead
        output = config.output_quantizer
        self.output_ranges = output.build(None, self, "output") if output is not None else None
        self.pre_activation_ranges = None
        if self.activation is not None and output is not None:
            self.pre_activation_ranges = output.build(None, self, "pre_activation")
            if self.activation_name in FIXED_RANGE_ACTIVATIONS:
                self.output_ranges = None
        self.built = True

    def capture_structure(self) -> None:
        """Takes the sparsity masks from the current weights (after weights were copied in)."""
        for mask, (weight, _) in zip(self.masks, self._quantized):
            mask.assign(keras.ops.cast(keras.ops.not_equal(weight, 0), "float32"))

    def _folding(self):
        """The folded BN's per-channel scale and the folded bias, or (None, None)."""
        bn = self.batch_norm
        if bn is None:
            return None, None
        inv = tf.math.rsqrt(bn.moving_variance.value + bn.epsilon)
        scale = inv * bn.gamma.value if bn.scale else inv
        bias = self.layer.bias.value if self.layer.use_bias else 0.0
        folded_bias = (bias - bn.moving_mean.value) * scale
        if bn.center:
            folded_bias = folded_bias + bn.beta.value
        return scale, folded_bias

    def quantized_weights(self) -> dict[int, tf.Tensor]:
        """The values the layer computes with, by variable id: transformed and fake-quantized."""
        if not self.built and self.layer.built:
            self.build(self.layer.get_build_config()["input_shape"])
        scale, _ = self._folding()
        result = {}
        for i, (weight, quantizer) in enumerate(self._quantized):
            value = self._preserved(i, weight)
            if scale is not None:
                value = value * tf.reshape(scale, weight.shape[-2:] if self._depthwise else [-1])
            result[id(weight)] = quantizer(value)
        return result

    def _preserved(self, i: int, weight) -> tf.Tensor:
        """Weight `i` as QAT trains it: shared centroids and/or masked zeros, in float."""
        value = weight.value
        if self.centroids:
            value = tf.gather(self.centroids[i].value, self.indices[i].value)
        if self.masks:
            value = value * self.masks[i].value
        return value

    @property
    def _depthwise(self) -> bool:
        return isinstance(self.layer, keras.layers.DepthwiseConv2D)

    def _batch_folding(self, inputs, args, kwargs):
        """In training: the factor and bias that turn the folded convolution into batch norm.

        The float convolution gives the batch's mean and variance, which update the
        BN's moving statistics. The weights stay folded with the moving variance
        (as they will be in the `.tflite`); multiplying the output by
        `sigma_moving / sigma_batch` and adding `beta + gamma * (bias - mean) /
        sigma_batch` gives what batch norm computes in training (Krishnamoorthi 2018).
        """
        bn = self.batch_norm
        moving_variance = tf.convert_to_tensor(bn.moving_variance.value)  # before the update
        float_weights = {id(w): self._preserved(i, w) for i, (w, _) in enumerate(self._quantized)}
        z = self._substituted_call(float_weights, inputs, args, True, kwargs)
        mean, variance = tf.nn.moments(z, list(range(len(z.shape) - 1)))
        m = bn.momentum
        bn.moving_mean.assign(bn.moving_mean.value * m + tf.stop_gradient(mean) * (1 - m))
        bn.moving_variance.assign(moving_variance * m + tf.stop_gradient(variance) * (1 - m))
        inv_batch = tf.math.rsqrt(variance + bn.epsilon)
        correction = tf.sqrt(moving_variance + bn.epsilon) * inv_batch
        gamma = bn.gamma.value if bn.scale else 1.0
        bias = self.layer.bias.value if self.layer.use_bias else 0.0
        batch_bias = (bias - mean) * gamma * inv_batch
        return correction, (batch_bias + bn.beta.value) if bn.center else batch_bias

    def call(self, inputs, *args, training=None, **kwargs):
        values = self.quantized_weights()
        _, folded_bias = self._folding()
        correction = None
        if folded_bias is not None and training:
            correction, folded_bias = self._batch_folding(inputs, args, kwargs)
        if folded_bias is not None and self.layer.use_bias:
            values[id(self.layer.bias)] = tf.zeros_like(self.layer.bias.value)
        if not values:  # nothing to substitute (Add, BatchNormalization, ReLU...)
            outputs = self.layer(inputs, *args, training=training, **kwargs)
        else:
            outputs = self._substituted_call(values, inputs, args, training, kwargs)
        if correction is not None:
            outputs = outputs * correction
        if folded_bias is not None:
            outputs = outputs + folded_bias
        training = bool(training)
        if self.activation is not None:
            if self.pre_activation_ranges is not None:
                q = self.quantize_config.output_quantizer
                outputs = q(outputs, self.pre_activation_ranges, training)
            outputs = self.activation(outputs)
        if self.output_ranges is not None:
            q = self.quantize_config.output_quantizer
            outputs = keras.tree.map_structure(
                lambda t: q(t, self.output_ranges, training), outputs
            )
        return outputs

    def _substituted_call(self, values: dict, inputs, args, training, kwargs):
        """Runs the layer with `values` in place of its variables, keeping its own updates."""
        trainable = [values.get(id(v), v.value) for v in self.layer.trainable_variables]
        others = [values.get(id(v), v.value) for v in self.layer.non_trainable_variables]
        if self._takes_training:
            kwargs = {**kwargs, "training": training}
        outputs, updated = self.layer.stateless_call(trainable, others, inputs, *args, **kwargs)
        if training:  # state the layer updates itself, such as moving statistics
            for variable, value in zip(self.layer.non_trainable_variables, updated):
                if id(variable) not in values:
                    variable.assign(value)
        return outputs

    def stripped_layer(self) -> keras.layers.Layer:
        """A plain copy of the layer holding the quantized weights (BN folded, activation back)."""
        config = self.layer.get_config()
        if self.activation_name is not None:
            config["activation"] = self.activation_name
        if self.batch_norm is not None:
            config["use_bias"] = True
        plain = self.layer.__class__.from_config(config)
        plain.build_from_config(self.layer.get_build_config())
        values = {k: keras.ops.convert_to_numpy(v) for k, v in self.quantized_weights().items()}
        _, folded_bias = self._folding()
        for old, new in zip(self.layer.weights, plain.weights):  # a folded-in bias comes last
            new.assign(values.get(id(old), keras.ops.convert_to_numpy(old)))
        if folded_bias is not None:
            plain.bias.assign(keras.ops.convert_to_numpy(folded_bias))
        return plain

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "quantize_config": keras.saving.serialize_keras_object(self.quantize_config),
            "activation": self.activation_name,
            "batch_norm": None
            if self.batch_norm is None
            else keras.saving.serialize_keras_object(self.batch_norm),
            "preserve_sparsity": self.preserve_sparsity,
            "preserve_clusters": self.preserve_clusters,
            "num_centroids": self.num_centroids,
        }
