"""`quantize_apply`: an annotated model's QAT copy, built in four named steps."""

from __future__ import annotations

import keras

from tfcompress.quantization.graph_plan import plan_levels
from tfcompress.quantization.input_quantizers import InputQuantizers
from tfcompress.quantization.layer_quantizer import LayerQuantizer
from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.resolve import QAT_LEAVES, Precision, resolve_configs
from tfcompress.quantization.scheme import QuantizeScheme, get_scheme
from tfcompress.quantization.shared_ranges import tie_shared_ranges
from tfcompress.utils.surgery import check_model, clone_graph, leaf_layers, require_graph

SUBCLASSED_ADVICE = (
    "Pass it to `quantize_model`, which quantizes its layer attributes, or annotate its layers "
    "in `__init__`."
)


def is_quantized(model: keras.layers.Layer) -> bool:
    """True when `model` holds QAT wrappers or input quantizers (made by `quantize_apply`)."""
    leaves = leaf_layers(model, QAT_LEAVES)
    return any(isinstance(leaf, (QuantizeWrapper, QuantizeLayer)) for leaf in leaves)


def check_unquantized(model: keras.Model) -> None:
    """Raises when `model` is quantized already."""
    if is_quantized(model):
        raise ValueError(
            f"Model {model.name!r} is already quantized; call `strip_quantization` first."
        )


def quantize_apply(
    model: keras.Model,
    scheme: str | QuantizeScheme = "default_8bit",
    precision: Precision = None,
) -> keras.Model:
    """Turns the annotated layers of a model into `QuantizeWrapper`s for QAT.

    Returns a new functional model (a Sequential model comes back functional,
    with the same layers); the original is untouched. Each float model input
    gets a `QuantizeLayer`; a linear Dense/Conv/DepthwiseConv (or the
    pointwise part of a split SeparableConv2D) followed by a
    BatchNormalization absorbs it (folding), and a BN over images with no
    convolution before it runs as a 1x1 depthwise convolution; a ReLU/ReLU6
    after a conv, dense or Add takes the range instead of the op before it, as
    TFLite fuses them. Operations from operator syntax or `keras.ops` calls
    (`x + y`, `x * 0.5`) next to quantized layers get a `QuantizeLayer` on
    their output where the int8 model needs a range. Layers not annotated stay
    float.

    Args:
        model: A model from `quantize_annotate_model` or with layers annotated by
            `quantize_annotate_layer`.
        scheme: A `QuantizeScheme` or a name from `SCHEMES` (`"default_8bit"`,
            `"default_4bit"`, `"prune_preserve_8bit"`, `"cluster_preserve_8bit"`,
            `"prune_cluster_preserve_8bit"`).
        precision: Per-layer weight bits overriding the scheme's: a dict keyed
            by layer name or layer class, or a function `layer -> value`; a
            value is 8, 4, `"float"` (leave the layer float), or None (default).

    Raises:
        ValueError: Nothing annotated, an already quantized model, bits TFLite
            cannot run, a layer without a QuantizeConfig.
    """
    check_model(model, "quantize_apply", "model")
    require_graph(model, "quantize_apply", SUBCLASSED_ADVICE)
    scheme = get_scheme(scheme)
    check_unquantized(model)
    return apply_quantization(model, scheme, precision)


def apply_quantization(
    model: keras.Model,
    scheme: QuantizeScheme,
    precision: Precision,
    annotate_all: bool = False,
) -> keras.Model:
    """The steps of `quantize_apply` on a checked Sequential or functional model.

    1. `resolve_configs`: each annotated layer's QuantizeConfig (or float);
       with `annotate_all`, every layer counts as annotated (`quantize_model`).
    2. `plan_levels`: batch-norm folding and activation fusion, per graph level.
    3. `LayerQuantizer.replace`: each layer's new layer.
    4. `clone_graph` on new inputs (`InputQuantizers`), calling each new layer
       through `LayerQuantizer.call`; then `tie_shared_ranges` gives the tensors
       TFLite gives one scale (a concat's inputs and output) one range.
    """
    configs = resolve_configs(model, scheme, precision, annotate_all)
    plans = plan_levels(model, configs)
    inputs = InputQuantizers(model, scheme)
    quantizer = LayerQuantizer(configs, plans, scheme, inputs)
    qat = clone_graph(model, quantizer.replace, call=quantizer.call, input_tensors=inputs.tensors)
    tie_shared_ranges(qat)
    return qat
