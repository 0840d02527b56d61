"""Which layers quantization knows: the `QuantizableLayer` protocol and one registry."""

from __future__ import annotations

from collections.abc import Callable

import keras

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.separable import split_separable
from tfcompress.quantization.weight_quantizer import WeightQuantizer

ConfigFn = Callable[[keras.layers.Layer], QuantizeConfig]
SplitFn = Callable[[keras.layers.Layer], list]

# Activations TFLite fuses into the op before them (CONV_2D, FULLY_CONNECTED, ADD...).
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")
# Activations whose int8 output range TFLite fixes itself.
FIXED_RANGE_ACTIVATIONS = ("softmax", "sigmoid", "tanh")


class QuantizableLayer:
    """Mixin for custom layers: say how quantization-aware training treats the layer.

    Example:
        >>> from tfcompress.quantization import (
        ...     ActivationQuantizer, QuantizableLayer, QuantizeConfig, WeightQuantizer)
        >>> class Scale(keras.layers.Layer, QuantizableLayer):
        ...     def build(self, input_shape):
        ...         self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1],))
        ...     def call(self, x):
        ...         return x * self.kernel
        ...     def get_quantize_config(self):
        ...         return QuantizeConfig({"kernel": WeightQuantizer(per_channel=False)},
        ...                               ActivationQuantizer())
        >>> qat = tfcompress.quantize_model(keras.Sequential([keras.Input((4,)), Scale()]))
        >>> [type(layer).__name__ for layer in qat.layers]
        ['InputLayer', 'QuantizeLayer', 'QuantizeWrapper']
    """

    def get_quantize_config(self) -> QuantizeConfig:
        raise NotImplementedError("QuantizableLayer subclasses return their QuantizeConfig.")


_REGISTRY: dict[type, ConfigFn] = {}
_SPLITS: dict[type, SplitFn] = {}


def register_quantize_config(layer_class: type, config_fn: ConfigFn) -> None:
    """Registers how to quantize a built-in or third-party layer class.

    `config_fn(layer)` returns the layer's `QuantizeConfig` (one with no
    weights and no output quantizer for layers that pass ranges through).
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            f"`layer_class` must be a keras.layers.Layer subclass. Received: {layer_class!r}"
        )
    _REGISTRY[layer_class] = config_fn


def register_quantize_split(layer_class: type, split_fn: SplitFn) -> None:
    """Registers a layer class that QAT replaces by a sequence of simpler layers.

    A layer computing several ops in a row (SeparableConv2D: depthwise then
    pointwise; a factorized Dense: two matrix products) leaves the tensors
    between them without a quantization range, so TFLite would run those ops in
    float. `split_fn(layer)` receives the built layer and returns built layers,
    holding its weights, that compute the same thing in sequence; each is then
    quantized with its own config. Applies to Sequential and functional models.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            f"`layer_class` must be a keras.layers.Layer subclass. Received: {layer_class!r}"
        )
    _SPLITS[layer_class] = split_fn


def quantize_split(layer: keras.layers.Layer) -> SplitFn | None:
    """The registered split of the layer's class, or None."""
    return next((_SPLITS[c] for c in type(layer).__mro__ if c in _SPLITS), None)


def default_quantize_config(layer: keras.layers.Layer) -> QuantizeConfig | None:
    """The layer's config from its protocol or the registry; None when quantization does not
    know the layer."""
    if isinstance(layer, QuantizableLayer):
        return layer.get_quantize_config()
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls](layer)
    return None


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The name of the layer's `activation` argument (Dense, ConvND, Activation), if it has one."""
    activation = layer.get_config().get("activation")
    if activation is None:
        return None
    if isinstance(activation, dict):  # a serialized function or object
        return activation.get("config", activation.get("class_name"))
    return str(activation)


def unregistered_error(layer: keras.layers.Layer) -> ValueError:
    name = type(layer).__name__
    return ValueError(
        f"Layer {layer.name!r} of type {name} has no QuantizeConfig. Pass one with "
        f"`quantize_annotate_layer(layer, quantize_config=QuantizeConfig(...))`, make the class "
        "implement `tfcompress.quantization.QuantizableLayer` (`get_quantize_config()`), or "
        f"register it with `tfcompress.quantization.register_quantize_config({name}, fn)`."
    )


def _register_builtins() -> None:
    layers = keras.layers

    def weights_and_output(names: dict, output=True):
        def config(layer):
            return QuantizeConfig(dict(names), ActivationQuantizer() if output else None)

        return config

    def output_unless_fixed(layer):
        fixed = isinstance(layer, layers.Softmax) or activation_name(layer) in (
            FIXED_RANGE_ACTIVATIONS
        )
        # A linear Activation (keras.applications' `predictions` with no classifier
        # activation) is an identity: a range of its own would cost an int8 -> int8 requantize.
        passes_through = activation_name(layer) == "linear"
        return QuantizeConfig({}, None if fixed or passes_through else ActivationQuantizer())

    per_tensor = WeightQuantizer(per_channel=False)
    conv = WeightQuantizer(per_channel=True)
    depthwise = WeightQuantizer(per_channel=True, channel_dims=2)
    # Dense: TFLite's converter cannot carry a per-channel axis through the transposed
    # FULLY_CONNECTED weights, so Dense is per-tensor.
    for cls in (layers.Dense, layers.EinsumDense, layers.Conv2DTranspose, layers.Conv1DTranspose):
        register_quantize_config(cls, weights_and_output({"kernel": per_tensor}))
    register_quantize_config(layers.Conv2D, weights_and_output({"kernel": conv}))
    # Conv1D and DepthwiseConv1D run as CONV_2D / DEPTHWISE_CONV_2D on an expanded kernel,
    # which loses a per-channel axis (the converter fails on one).
    for cls in (layers.Conv1D, layers.DepthwiseConv1D):
        register_quantize_config(cls, weights_and_output({"kernel": per_tensor}))
    register_quantize_config(layers.DepthwiseConv2D, weights_and_output({"kernel": depthwise}))
    for cls in (layers.SeparableConv1D, layers.SeparableConv2D):
        register_quantize_config(
            cls, weights_and_output({"depthwise_kernel": depthwise, "pointwise_kernel": conv})
        )
    embedding = weights_and_output({"embeddings": per_tensor}, output=False)
    register_quantize_config(layers.Embedding, embedding)
    register_quantize_config(layers.MultiHeadAttention, weights_and_output({"kernel": per_tensor}))
    for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        register_quantize_config(
            cls, weights_and_output({"kernel": per_tensor, "recurrent_kernel": per_tensor})
        )
    quantized_output = (
        layers.BatchNormalization,
        layers.LayerNormalization,
        layers.Rescaling,
        layers.Normalization,
        layers.Add,
        layers.Subtract,
        layers.Multiply,
        layers.Average,
        layers.Maximum,
        layers.Minimum,
        layers.Concatenate,
        layers.GlobalAveragePooling1D,
        layers.GlobalAveragePooling2D,
        layers.ReLU,
        layers.LeakyReLU,
        layers.ELU,
        layers.PReLU,
        # TFLite's int8 AVERAGE_POOL_2D keeps its input's scale and rounds each mean to it:
        # the output range is tied to the input's (`shared_ranges.py`), so QAT rounds too.
        layers.AveragePooling1D,
        layers.AveragePooling2D,
    )
    for cls in quantized_output:
        register_quantize_config(cls, weights_and_output({}))
    for cls in (layers.Activation, layers.Softmax):
        register_quantize_config(cls, output_unless_fixed)
    passthrough = (
        layers.InputLayer,
        layers.Reshape,
        layers.Flatten,
        layers.Permute,
        layers.Dropout,
        layers.SpatialDropout1D,
        layers.SpatialDropout2D,
        layers.GaussianNoise,
        layers.GaussianDropout,
        layers.MaxPooling1D,
        layers.MaxPooling2D,
        layers.GlobalMaxPooling1D,
        layers.GlobalMaxPooling2D,
        layers.ZeroPadding1D,
        layers.ZeroPadding2D,
        layers.Cropping1D,
        layers.Cropping2D,
        layers.Identity,
        layers.UpSampling1D,
        layers.UpSampling2D,
    )
    for cls in passthrough:
        register_quantize_config(cls, weights_and_output({}, False))


_register_builtins()
register_quantize_split(keras.layers.SeparableConv2D, split_separable)
