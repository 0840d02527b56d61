"""`QuantizeWrapper`: runs a layer on fake-quantized weights and fake-quantizes its output."""

from __future__ import annotations

import inspect
import math

import keras
import tensorflow as tf

from tfcompress.quantization.activation_quantizer import RangeTie
from tfcompress.quantization.activation_split import split_activation
from tfcompress.quantization.batch_norm_folding import BatchNormFolding
from tfcompress.quantization.cluster_preservation import ClusterPreservation
from tfcompress.quantization.graph_plan import AVERAGE_POOLS
from tfcompress.quantization.output_quantization import OutputQuantization
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.registry import default_quantize_config, unregistered_error
from tfcompress.quantization.sparsity_preservation import SparsityPreservation
from tfcompress.quantization.stripping import stripped_layer


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizeWrapper(keras.layers.Wrapper):
    """Quantization-aware training of one layer.

    In `call`, the weights named by the `QuantizeConfig` are fake-quantized
    (symmetric, narrow range, per channel for convolutions), the layer runs on
    them through `stateless_call`, and the output is fake-quantized with a
    moving-average range. Gradients pass straight through the rounding, so
    `fit` trains the float weights while the forward pass sees exactly the
    values the int8 `.tflite` will hold.

    The wrapper composes one small piece per concern:

    - Activations (`split_activation`, `OutputQuantization`): ReLU and ReLU6
      stay inside the layer (TFLite fuses them into CONV_2D /
      FULLY_CONNECTED, and the output range is taken after them). Any other
      activation is split off: the layer runs linear, its output is
      quantized, then the activation runs (and is quantized again unless it is
      softmax, sigmoid or tanh, whose int8 ranges TFLite fixes).
    - Batch-norm folding (`BatchNormFolding`): with `batch_norm`, the wrapped
      linear Dense/Conv/Depthwise layer absorbs the BatchNormalization that
      follows it, in the folded form the converter writes into the int8 op;
      in training the output is corrected to batch statistics, which also
      update the moving ones, as batch norm would.
    - Collaborative optimization: `preserve_sparsity` (`SparsityPreservation`)
      keeps every weight that was zero when the layer was wrapped at exactly
      zero (a pruned model keeps its zeros and its block or N:M structure
      through QAT and conversion); `preserve_clusters` (`ClusterPreservation`)
      trains one value per distinct weight value (the centroids of a
      clustered model), so the number of distinct values never grows.
    - Stripping (`stripped_layer`): the plain layer holding the quantized
      weights, with the BN folded in and the activation back.

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
        >>> from tfcompress.quantization import QuantizeWrapper
        >>> wrapper = QuantizeWrapper(keras.layers.Conv2D(8, 3, activation="relu"))
        >>> y = wrapper(np.zeros((1, 8, 8, 1), "float32"), training=True)
        >>> tuple(y.shape)
        (1, 6, 6, 8)
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
        quantize_config = _quantize_config(layer, quantize_config)
        if activation is None:
            layer, activation = split_activation(layer)
        if isinstance(batch_norm, dict):
            batch_norm = keras.saving.deserialize_keras_object(batch_norm)
        folding = None if batch_norm is None else BatchNormFolding(layer, batch_norm)
        kwargs.setdefault("name", f"quant_{layer.name}")
        super().__init__(layer, **kwargs)
        self.quantize_config = quantize_config
        self.activation_name = activation
        self.batch_norm = batch_norm
        self.preserve_sparsity = bool(preserve_sparsity)
        self.preserve_clusters = bool(preserve_clusters)
        self.num_centroids = None if num_centroids is None else [int(n) for n in num_centroids]
        self._folding = folding
        self._output = OutputQuantization(
            quantize_config.output_quantizer, activation, _mean_window(layer)
        )
        self._sparsity = self._clusters = None
        self._takes_training = "training" in inspect.signature(layer.call).parameters

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        if self._folding is not None:
            self._folding.build(input_shape)
        self._quantized = _quantized_weights(self.layer, self.quantize_config)
        weights = [w for w, _ in self._quantized]
        if self.preserve_sparsity:
            self._sparsity = SparsityPreservation(self, weights)
        if self.preserve_clusters:
            self._clusters = ClusterPreservation(self, weights, self.num_centroids)
            self.num_centroids = self._clusters.num_centroids
        self._output.build(self)
        self.built = True

    @property
    def masks(self) -> list[keras.Variable]:
        """The sparsity masks (`preserve_sparsity`), one per quantized weight."""
        return [] if self._sparsity is None else self._sparsity.masks

    @property
    def centroids(self) -> list[keras.Variable]:
        """The trained shared values (`preserve_clusters`), one table per quantized weight."""
        return [] if self._clusters is None else self._clusters.centroids

    @property
    def indices(self) -> list[keras.Variable]:
        """Each element's centroid (`preserve_clusters`), one array per quantized weight."""
        return [] if self._clusters is None else self._clusters.indices

    @property
    def output_ranges(self) -> dict | None:
        """The output's range variables, or None (no output quantizer, or a fixed range)."""
        return self._output.output_ranges

    @property
    def output_tie(self) -> RangeTie:
        """How the output's range is tied to other tensors' (`shared_ranges.py`)."""
        return self._output.tie

    @property
    def pre_activation_ranges(self) -> dict | None:
        """The range of the tensor before a split-off activation, or None."""
        return self._output.pre_activation_ranges

    def capture_structure(self) -> None:
        """Takes the sparsity masks from the current weights (after weights were copied in)."""
        if self._sparsity is not None:
            self._sparsity.capture()

    def quantized_weights(self) -> dict[int, tf.Tensor]:
        """The values the layer computes with, by variable id: transformed and fake-quantized."""
        if not self.built and self.layer.built:
            self.build(self.layer.get_build_config()["input_shape"])
        result = {}
        for i, (weight, quantizer) in enumerate(self._quantized):
            value = self._preserved(i, weight)
            if self._folding is not None:
                value = value * self._folding.kernel_scale(weight)
            result[id(weight)] = quantizer(value)
        return result

    def _preserved(self, i: int, weight) -> tf.Tensor:
        """Weight `i` as QAT trains it: shared centroids and/or masked zeros, in float."""
        value = weight.value
        if self._clusters is not None:
            value = self._clusters.clustered(i)
        if self._sparsity is not None:
            value = self._sparsity.masked(i, value)
        return value

    def _float_weights(self) -> dict[int, tf.Tensor]:
        """The preserved weights by variable id, not quantized nor scaled by a folded BN."""
        return {id(w): self._preserved(i, w) for i, (w, _) in enumerate(self._quantized)}

    def call(self, inputs, *args, training=None, **kwargs):
        values = self.quantized_weights()
        correction = folded_bias = None
        if self._folding is not None:
            if training:  # batch statistics, from the float layer on this batch
                z = self._substituted_call(self._float_weights(), inputs, args, True, kwargs)
                correction, folded_bias = self._folding.batch_terms(z)
            else:
                folded_bias = self._folding.folded_bias()
            if self.layer.use_bias:  # the folded bias replaces the layer's
                values[id(self.layer.bias)] = tf.zeros_like(self.layer.bias.value)
        if not values:  # nothing to substitute (Add, BatchNormalization, ReLU...)
            outputs = self.layer(inputs, *args, training=training, **kwargs)
        else:
            outputs = self._substituted_call(values, inputs, args, training, kwargs)
        if correction is not None:
            outputs = outputs * correction
        if folded_bias is not None:
            outputs = outputs + folded_bias
        return self._output(outputs, bool(training))

    def compute_output_spec(self, inputs, *args, **kwargs):
        # Keras marks `x * 0.5` (a tensor times a Python number) sparse; fake quantization
        # needs the dense tensor it is when the model runs.
        dense = keras.tree.map_structure(_dense_spec, inputs)
        return super().compute_output_spec(dense, *args, **kwargs)

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
        values = self.quantized_weights()
        folded_bias = None if self._folding is None else self._folding.folded_bias()
        return stripped_layer(self.layer, values, self.activation_name, folded_bias)

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


def _mean_window(layer: keras.layers.Layer) -> int:
    """The most values one output of an average pool averages (its pool size), else 0."""
    if not isinstance(layer, AVERAGE_POOLS):
        return 0
    size = layer.pool_size
    return math.prod(size) if isinstance(size, (tuple, list)) else int(size)


def _dense_spec(value):
    """A sparse symbolic tensor as a dense one of the same shape and dtype."""
    if isinstance(value, keras.KerasTensor) and value.sparse:
        return keras.KerasTensor(value.shape, value.dtype)
    return value


def _quantize_config(layer: keras.layers.Layer, quantize_config) -> QuantizeConfig:
    """The config given (or its serialized dict), else the registry's for `layer`."""
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
    return quantize_config


def _quantized_weights(layer: keras.layers.Layer, config: QuantizeConfig) -> list[tuple]:
    """`(weight, quantizer)` for each weight of `layer` that `config` names, in layer order."""
    quantized = [w for w in layer.weights if w.name in config.weight_quantizers]
    missing = set(config.weight_quantizers) - {w.name for w in quantized}
    if missing:
        raise ValueError(
            f"Layer {layer.name!r}: its QuantizeConfig names weights {sorted(missing)} "
            f"that the layer does not have; it has {[w.name for w in layer.weights]}."
        )
    return [(w, config.weight_quantizers[w.name]) for w in quantized]
