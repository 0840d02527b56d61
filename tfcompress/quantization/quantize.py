"""Entry points: `quantize_model`, `quantize_annotate_*`, `strip_quantization`, `quantize_scope`.

`quantize_apply` and its steps live in `quantize_apply.py`.
"""

from __future__ import annotations

import contextlib

import keras

from tfcompress.quantization.quantize_annotate import QuantizeAnnotate
from tfcompress.quantization.quantize_apply import (
    SUBCLASSED_ADVICE,
    apply_quantization,
    check_unquantized,
)
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.registry import default_quantize_config, unregistered_error
from tfcompress.quantization.resolve import Precision, check_precision_names, resolve_config
from tfcompress.quantization.scheme import QuantizeScheme, get_scheme
from tfcompress.utils.surgery import (
    Replacement,
    check_model,
    clone_graph,
    is_graph_model,
    layer_attributes,
    rebuild_subclassed,
    require_graph,
)


def quantize_annotate_layer(
    to_annotate: keras.layers.Layer, quantize_config: QuantizeConfig | None = None
) -> QuantizeAnnotate:
    """Marks one layer for quantization (used inside a model given to `quantize_apply`).

    Args:
        to_annotate: The layer.
        quantize_config: How to quantize it. Required for layers quantization
            does not know (no `QuantizableLayer` protocol, not registered).

    Raises:
        ValueError: The layer is unknown and no `quantize_config` was given.
    """
    if not isinstance(to_annotate, keras.layers.Layer):
        raise TypeError(
            f"`to_annotate` must be a keras.layers.Layer. Received: type "
            f"{type(to_annotate).__name__}"
        )
    if isinstance(to_annotate, QuantizeWrapper):
        raise ValueError(f"Layer {to_annotate.name!r} is already quantized.")
    if quantize_config is None and default_quantize_config(to_annotate) is None:
        raise unregistered_error(to_annotate)
    return QuantizeAnnotate(to_annotate, quantize_config)


def quantize_annotate_model(to_annotate: keras.Model) -> keras.Model:
    """Annotates every layer of a Sequential or functional model (nested ones included).

    Layers already annotated keep their annotation and config.

    Raises:
        ValueError: A layer has no QuantizeConfig, or the model is already quantized.
    """
    check_model(to_annotate, "quantize_annotate_model", "to_annotate")
    check_unquantized(to_annotate)
    require_graph(to_annotate, "quantize_annotate_model", SUBCLASSED_ADVICE)
    return clone_graph(to_annotate, _annotated)


def _annotated(layer: keras.layers.Layer) -> Replacement:
    """A built copy of `layer`, annotated (one annotated already keeps its config)."""
    if isinstance(layer, QuantizeAnnotate):
        return Replacement(built=True)
    return Replacement(wrap=quantize_annotate_layer, built=True)


def quantize_model(
    to_quantize: keras.Model,
    scheme: str | QuantizeScheme = "default_8bit",
    precision: Precision = None,
) -> keras.Model:
    """Quantization-aware training for a whole model: annotate every layer, then apply.

    Sequential, functional and nested models are cloned (see `quantize_apply`).
    A built subclassed model is re-created from its `get_config()` with each
    layer attribute wrapped (see `tfcompress.utils.surgery`), and returned
    inside a functional model that quantizes its input first; its own call
    graph is not visible, so there is no batch-norm folding or fusion there.
    Train the result with `fit`, export it with
    `export_tflite(model, mode="int8")` (no representative data needed), or
    `strip_quantization` it.

    Args:
        to_quantize: A built Keras model.
        scheme: See `quantize_apply`.
        precision: See `quantize_apply`.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
        >>> qat = tfcompress.quantize_model(model)
        >>> qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = qat.fit(data.x_train[:64], data.y_train[:64], epochs=1, verbose=0)
        >>> content = tfcompress.export_tflite(qat, mode="int8")
        >>> ops = [op.name for op in tfcompress.TFLiteFile(content).ops]
        >>> ops.count("FULLY_CONNECTED")
        2
    """
    check_model(to_quantize, "quantize_model", "to_quantize")
    check_unquantized(to_quantize)
    scheme = get_scheme(scheme)
    if is_graph_model(to_quantize):
        return apply_quantization(to_quantize, scheme, precision, annotate_all=True)
    return _quantize_subclassed(to_quantize, scheme, precision)


def _quantize_subclassed(
    model: keras.Model, scheme: QuantizeScheme, precision: Precision
) -> keras.Model:
    """The rebuilt `model` (layer attributes wrapped) behind an input quantizer."""
    if scheme.preserve_clusters:
        require_graph(model, "Clustering-preserving QAT")
    check_precision_names(model, precision)

    def replace(layer: keras.layers.Layer) -> Replacement | None:
        config = resolve_config(layer, None, scheme, precision)
        if config is None or config.is_passthrough:
            return None
        return Replacement(
            wrap=lambda inner: QuantizeWrapper(
                inner, config, preserve_sparsity=scheme.preserve_sparsity
            )
        )

    rebuilt = rebuild_subclassed(model, replace)
    for wrapper in layer_attributes(rebuilt).values():
        if isinstance(wrapper, QuantizeWrapper):
            wrapper.capture_structure()  # the weights arrived after the wrapper was built
    shape = model.get_build_config()["input_shape"]
    inputs = keras.Input(batch_shape=tuple(shape))
    outputs = rebuilt(QuantizeLayer(scheme.activation_quantizer(), name="quantize_layer")(inputs))
    return keras.Model(inputs, outputs, name=f"quant_{model.name}")


def strip_quantization(model: keras.Model) -> keras.Model:
    """A float Keras model computing with the quantized weight values.

    Each `QuantizeWrapper` becomes its plain layer holding the fake-quantized
    weights (with a folded BatchNormalization inside the convolution's weights
    and bias), input quantizers and annotations disappear. The model's float
    outputs then match the QAT model's up to the activation rounding.
    """
    check_model(model, "strip_quantization", "model")
    if not is_graph_model(model):
        return rebuild_subclassed(model, _unquantized)
    return clone_graph(model, _unquantized, call=_skip_input_quantizers)


def _unquantized(layer: keras.layers.Layer) -> Replacement | keras.layers.Layer:
    """The float layer taking `layer`'s place."""
    if isinstance(layer, QuantizeWrapper):
        return layer.stripped_layer()
    if isinstance(layer, QuantizeAnnotate):
        return Replacement(unwrap=True, built=True)
    if isinstance(layer, keras.Model) and not is_graph_model(layer):
        return strip_quantization(layer)
    return Replacement(built=True)


def _skip_input_quantizers(layer: keras.layers.Layer, *args, **kwargs):
    return args[0] if isinstance(layer, QuantizeLayer) else layer(*args, **kwargs)


@contextlib.contextmanager
def quantize_scope(*args: dict):
    """Makes tfcompress's quantization classes (and any given dicts) known while loading.

    They are registered as serializable under package `tfcompress`, so `.keras`
    files load without it; it exists for code written against tfmot.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> tfcompress.quantize_model(model).save("qat.keras")
        >>> with tfcompress.quantize_scope():
        ...     model = keras.models.load_model("qat.keras")
        >>> tfcompress.quantization.is_quantized(model)
        True
    """
    objects = {
        cls.__name__: cls
        for cls in (QuantizeWrapper, QuantizeLayer, QuantizeAnnotate, QuantizeConfig)
    }
    for extra in args:
        objects.update(extra)
    with keras.saving.custom_object_scope(objects):
        yield
