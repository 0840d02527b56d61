"""Entry points: `quantize_model`, `quantize_annotate_*`, `quantize_apply`, `strip_quantization`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import keras

from tfcompress.pruning.subclassed import layer_attributes, rebuild_subclassed
from tfcompress.quantization.graph_plan import GraphPlan, plan_graph
from tfcompress.quantization.quantize_annotate import QuantizeAnnotate
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.quantizer import WEIGHT_BITS, check_bits
from tfcompress.quantization.registry import (
    default_quantize_config,
    quantize_split,
    unregistered_error,
)
from tfcompress.quantization.scheme import QuantizeScheme, get_scheme
from tfcompress.utils.cloning import built_copy, is_graph_model, leaf_layers

# Layers that only scale a model input run in float before the input quantizer.
PREPROCESSING = (keras.layers.Rescaling, keras.layers.Normalization)
Precision = dict | Callable[[keras.layers.Layer], int | str | None] | None
FLOAT = "float"
QAT_LEAVES = (QuantizeWrapper, QuantizeAnnotate)  # wrappers not looked into


def is_quantized(model: keras.layers.Layer) -> bool:
    """True when `model` holds QAT wrappers or input quantizers (made by `quantize_apply`)."""
    leaves = leaf_layers(model, QAT_LEAVES)
    return any(isinstance(leaf, (QuantizeWrapper, QuantizeLayer)) for leaf in leaves)


def _check_model(model, what: str) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(f"`{what}` must be a keras.Model. Received: type {type(model).__name__}")
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} was never built; build it (or define it with `keras.Input`)."
        )


def _as_functional(model: keras.Model) -> keras.Model:
    """The same layers called on the Sequential model's input, as a functional model."""
    if not isinstance(model, keras.Sequential):
        return model
    x = inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    for layer in model.layers:
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


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
    _check_model(to_annotate, "to_annotate")
    if is_quantized(to_annotate):
        raise ValueError(
            f"Model {to_annotate.name!r} is already quantized; call `strip_quantization` first."
        )
    if not is_graph_model(to_annotate):
        raise ValueError(
            f"Model {to_annotate.name!r} is subclassed: pass it to `quantize_model`, which "
            "quantizes its layer attributes, or annotate its layers in `__init__`."
        )

    def replace(layer):
        if isinstance(layer, (QuantizeAnnotate, keras.layers.InputLayer)):
            return built_copy(layer)
        return quantize_annotate_layer(built_copy(layer))

    return keras.models.clone_model(to_annotate, clone_function=replace, recursive=True)


def _bits_for(
    layer: keras.layers.Layer, precision: Precision, default: int | None
) -> int | str | None:
    if precision is None:
        return default
    if callable(precision) and not isinstance(precision, dict):
        value = precision(layer)
    else:
        value = precision.get(layer.name)
        if value is None:
            value = next((v for k, v in precision.items()
                          if isinstance(k, type) and isinstance(layer, k)), None)  # fmt: skip
    if value is None:
        return default
    if value == FLOAT:
        return FLOAT
    return check_bits(value, WEIGHT_BITS, "precision", f"Layer {layer.name!r}")


def _resolve(
    layer: keras.layers.Layer,
    explicit: QuantizeConfig | None,
    scheme: QuantizeScheme,
    precision: Precision,
) -> QuantizeConfig | None:
    """The QuantizeConfig for a layer to quantize, or None to keep it float.

    An explicit config keeps its own bits unless `precision` names the layer.
    """
    config = explicit or default_quantize_config(layer)
    if config is None:
        raise unregistered_error(layer)
    bits = _bits_for(layer, precision, None if explicit else scheme.weight_bits)
    if bits == FLOAT:
        return None
    if scheme.learned_ranges and not explicit and config.output_quantizer is not None:
        config = QuantizeConfig(config.weight_quantizers, scheme.activation_quantizer())
    return config if bits is None else config.with_weight_bits(bits)


def quantize_apply(
    model: keras.Model,
    scheme: str | QuantizeScheme = "default_8bit",
    precision: Precision = None,
) -> keras.Model:
    """Turns the annotated layers of a model into `QuantizeWrapper`s for QAT.

    Returns a new functional model (a Sequential model comes back functional,
    with the same layers); the original is untouched. Each float model input
    gets a `QuantizeLayer`; a linear Dense/Conv/DepthwiseConv followed by a
    BatchNormalization absorbs it (folding); a ReLU/ReLU6 after a conv, dense
    or Add takes the range instead of the op before it, as TFLite fuses them.
    Layers not annotated stay float.

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
    _check_model(model, "model")
    scheme = get_scheme(scheme)
    if is_quantized(model):
        raise ValueError(
            f"Model {model.name!r} is already quantized; call `strip_quantization` first."
        )
    leaves = leaf_layers(model, QAT_LEAVES)
    annotated = [leaf for leaf in leaves if isinstance(leaf, QuantizeAnnotate)]
    if not annotated:
        raise ValueError(
            f"Model {model.name!r} has no annotated layers; use `quantize_model`, "
            "`quantize_annotate_model` or `quantize_annotate_layer` first."
        )
    configs = {id(a): _resolve(a.layer, a.quantize_config, scheme, precision) for a in annotated}
    functional = _as_functional(model)
    plans: dict[int, GraphPlan] = {}
    _plan_levels(functional, configs, plans)
    new_roles: dict[int, tuple[GraphPlan, str]] = {}  # id(new layer) -> its level's plan, name
    quantized_new: set[int] = set()

    preprocessing: set[int] = set()  # Rescaling/Normalization of a model input: kept float

    def wrap(inner, config, bn=None):
        return QuantizeWrapper(
            inner, config, batch_norm=bn, preserve_sparsity=scheme.preserve_sparsity,
            preserve_clusters=scheme.preserve_clusters,
        )  # fmt: skip

    def replace(layer):
        config = configs.get(id(layer))
        plan = plans.get(id(layer))
        inner = layer.layer if isinstance(layer, QuantizeAnnotate) else layer
        if config is None or config.is_passthrough:
            new = built_copy(inner)
        elif layer.name in plan.reads_input and isinstance(inner, PREPROCESSING):
            new = built_copy(inner)
            preprocessing.add(id(new))
        elif quantize_split(inner) is not None:
            new = _split(built_copy(inner), config, wrap)
        else:
            if layer.name in plan.fused_output:
                config = QuantizeConfig(config.weight_quantizers, None)
            bn = plan.folds.get(layer.name)
            new = wrap(built_copy(inner), config, None if bn is None else built_copy(bn.layer))
        if config is not None and id(new) not in preprocessing:
            quantized_new.add(id(new))
        new_roles[id(new)] = (plan, layer.name)
        return new

    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), functional.input
    )
    input_ids = {id(t) for t in keras.tree.flatten(inputs)}
    quantized: dict[int, keras.KerasTensor] = {}

    def quantize_once(tensor):
        if id(tensor) not in quantized:
            suffix = f"_{len(quantized)}" if quantized else ""
            layer = QuantizeLayer(scheme.activation_quantizer(), name=f"quantize_layer{suffix}")
            quantized[id(tensor)] = layer(tensor)
        return quantized[id(tensor)]

    def quantize_input(tensor):
        is_input = isinstance(tensor, keras.KerasTensor) and id(tensor) in input_ids
        return quantize_once(tensor) if is_input and "float" in str(tensor.dtype) else tensor

    def call(layer, *args, **kwargs):
        plan, name = new_roles.get(id(layer), (None, None))
        if plan is not None and name in plan.folded:
            return args[0]  # the BN lives on inside the convolution before it
        if id(layer) in preprocessing:  # float preprocessing, then the int8 model begins
            return quantize_once(layer(*args, **kwargs))
        if id(layer) in quantized_new or isinstance(layer, keras.Model):
            args = keras.tree.map_structure(quantize_input, args)
        return layer(*args, **kwargs)

    return keras.models.clone_model(
        functional, input_tensors=inputs, clone_function=replace, call_function=call,
        recursive=True,
    )  # fmt: skip


def _split(layer: keras.layers.Layer, config: QuantizeConfig, wrap: Callable) -> keras.Sequential:
    """The registered split of `layer`, each part quantized with its own config.

    The parts take the weight bits and the output quantizer of `layer`'s config.
    """
    bits = {q.bits for q in config.weight_quantizers.values()}
    bits = bits.pop() if len(bits) == 1 else None
    parts = []
    for part in quantize_split(layer)(layer):
        part_config = default_quantize_config(part)
        if part_config is None:
            raise unregistered_error(part)
        if part_config.is_passthrough:
            parts.append(part)
            continue
        if bits is not None:
            part_config = part_config.with_weight_bits(bits)
        parts.append(wrap(part, QuantizeConfig(part_config.weight_quantizers,
                                               config.output_quantizer)))  # fmt: skip
    return keras.Sequential(parts, name=layer.name)


def _plan_levels(model: keras.Model, configs: dict, plans: dict) -> None:
    """Plans folding and fusion for `model` and every functional model nested in it."""
    selected = {
        layer.name
        for layer in model.layers
        if configs.get(id(layer)) is not None and not configs[id(layer)].is_passthrough
    }
    selected |= {
        layer.name
        for layer in model.layers
        if isinstance(layer, QuantizeAnnotate) and configs.get(id(layer)) is not None
    }
    plan = plan_graph(model, selected)
    for layer in model.layers:
        plans[id(layer)] = plan
        if isinstance(layer, keras.Model) and is_graph_model(layer):
            _plan_levels(_as_functional(layer), configs, plans)


def quantize_model(
    to_quantize: keras.Model,
    scheme: str | QuantizeScheme = "default_8bit",
    precision: Precision = None,
) -> keras.Model:
    """Quantization-aware training for a whole model: annotate every layer, then apply.

    Sequential, functional and nested models are cloned (see `quantize_apply`).
    A built subclassed model is re-created from its `get_config()` with each
    layer attribute wrapped (see `tfcompress.pruning.subclassed`), and returned
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
        >>> qat = quantize_model(model)
        >>> qat.compile(...); qat.fit(x, y, epochs=1)
        >>> content = export_tflite(qat, mode="int8")
    """
    _check_model(to_quantize, "to_quantize")
    if is_graph_model(to_quantize):
        return quantize_apply(quantize_annotate_model(to_quantize), scheme, precision)
    if is_quantized(to_quantize):
        raise ValueError(
            f"Model {to_quantize.name!r} is already quantized; call `strip_quantization` first."
        )
    scheme = get_scheme(scheme)
    if scheme.preserve_clusters:
        raise ValueError(
            "Clustering-preserving QAT needs a Sequential or functional model; "
            f"model {to_quantize.name!r} is subclassed."
        )

    def swap(fresh, old):
        config = _resolve(fresh, None, scheme, precision)
        if config is None or config.is_passthrough:
            return fresh
        return QuantizeWrapper(fresh, config, preserve_sparsity=scheme.preserve_sparsity)

    rebuilt = rebuild_subclassed(to_quantize, swap)
    for wrapper in layer_attributes(rebuilt).values():
        if isinstance(wrapper, QuantizeWrapper):
            wrapper.capture_structure()  # the weights arrived after the wrapper was built
    shape = to_quantize.get_build_config()["input_shape"]
    inputs = keras.Input(batch_shape=tuple(shape))
    outputs = rebuilt(QuantizeLayer(scheme.activation_quantizer(), name="quantize_layer")(inputs))
    return keras.Model(inputs, outputs, name=f"quant_{to_quantize.name}")


def strip_quantization(model: keras.Model) -> keras.Model:
    """A float Keras model computing with the quantized weight values.

    Each `QuantizeWrapper` becomes its plain layer holding the fake-quantized
    weights (with a folded BatchNormalization inside the convolution's weights
    and bias), input quantizers and annotations disappear. The model's float
    outputs then match the QAT model's up to the activation rounding.
    """
    _check_model(model, "model")

    def replace(layer):
        if isinstance(layer, QuantizeWrapper):
            return layer.stripped_layer()
        if isinstance(layer, QuantizeAnnotate):
            return built_copy(layer.layer)
        if isinstance(layer, keras.Model) and not is_graph_model(layer):
            return _strip_subclassed(layer)
        return built_copy(layer)

    def call(layer, *args, **kwargs):
        if isinstance(layer, QuantizeLayer):
            return args[0]
        return layer(*args, **kwargs)

    if not is_graph_model(model):
        return _strip_subclassed(model)
    return keras.models.clone_model(
        _as_functional(model), clone_function=replace, call_function=call, recursive=True
    )


def _strip_subclassed(model: keras.Model) -> keras.Model:
    wrappers = {n: w for n, w in layer_attributes(model).items() if isinstance(w, QuantizeWrapper)}
    plain = rebuild_subclassed(model, lambda fresh, old: fresh)  # the class makes plain layers
    for name, wrapper in wrappers.items():
        getattr(plain, name).set_weights(wrapper.stripped_layer().get_weights())
    return plain


@contextlib.contextmanager
def quantize_scope(*args: dict):
    """Makes tfcompress's quantization classes (and any given dicts) known while loading.

    They are registered as serializable under package `tfcompress`, so `.keras`
    files load without it; it exists for code written against tfmot.

    Example:
        >>> with quantize_scope():
        ...     model = keras.models.load_model("qat.keras")
    """
    objects = {
        cls.__name__: cls
        for cls in (QuantizeWrapper, QuantizeLayer, QuantizeAnnotate, QuantizeConfig)
    }
    for extra in args:
        objects.update(extra)
    with keras.saving.custom_object_scope(objects):
        yield
