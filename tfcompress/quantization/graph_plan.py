"""Step 2 of `quantize_apply`: batch-norm folding and activation fusion, from the layer graph.

TFLite fuses a ReLU/ReLU6 into the CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED or ADD before it and folds a BatchNormalization into the
convolution before it. QAT must quantize where the int8 model has tensors,
so the output of the op before a fused activation gets no range of its own,
and the folded BN disappears into the convolution's weights. Several identical
ReLUs reading one tensor fuse too (the converter merges them into one). A
SeparableConv2D, split for QAT into a depthwise and a pointwise convolution,
counts as its pointwise part: the BN folds into it and a ReLU fuses into it.
A BN with no convolution before it runs as a 1x1 depthwise convolution
(`standalone_batch_norm.py`), which a ReLU fuses into too. An average pool
rounds its means to its input's range (`shared_ranges.py`) unless it reads
its input through a pass-through layer that other layers read too: there
(NASNet's reduction cells, one PAD read by an average pool and two max pools)
the converter leaves the Adds after the max pools in float, so it stays
unquantized.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

from tfcompress.quantization.operations import FUSES_RELU, is_operation
from tfcompress.quantization.quantize_annotate import unannotated
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.registry import activation_name, quantize_split
from tfcompress.quantization.standalone_batch_norm import runs_as_depthwise
from tfcompress.utils.surgery import is_graph_model

FOLDS_INTO = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)
# Layers that only scale model inputs (a chain of them, as in EfficientNet) run in float
# before the input quantizer.
PREPROCESSING = (keras.layers.Rescaling, keras.layers.Normalization)
# Average pools: their int8 output has their input's scale, each mean rounded to it.
AVERAGE_POOLS = (keras.layers.AveragePooling1D, keras.layers.AveragePooling2D)
# Split for QAT (see `separable.py`) into parts ending in a 1x1 Conv2D, which the BN folds into.
SPLIT_FOLDS_INTO = (keras.layers.SeparableConv2D,)
FUSES_ACTIVATION = (
    *FOLDS_INTO,
    *SPLIT_FOLDS_INTO,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
)


@dataclass
class GraphPlan:
    """Decisions for one Sequential or functional model, by layer name."""

    folds: dict[str, keras.layers.Layer] = field(default_factory=dict)  # conv -> BN folded in
    folded: set[str] = field(default_factory=set)  # BN layers that disappear
    fused_output: set[str] = field(default_factory=set)  # layers whose output is not quantized
    reads_input: set[str] = field(default_factory=set)  # layers fed only by model inputs
    preprocessing: set[str] = field(default_factory=set)  # float, from model inputs on
    quantized_ops: set[str] = field(default_factory=set)  # operations next to quantized layers
    unrounded_pools: set[str] = field(default_factory=set)  # average pools left unquantized


def _histories(value) -> list[str]:
    """Names of the layers whose tensors appear in one serialized call node."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for v in value.values() for name in _histories(v)]
    if isinstance(value, (list, tuple)):
        return [name for v in value for name in _histories(v)]
    return []


def fused_kind(layer: keras.layers.Layer) -> str | None:
    """The kind ("relu" or "relu6") of a ReLU TFLite can fuse into the op before it, or None."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        if config.get("negative_slope", 0) != 0 or config.get("threshold", 0) != 0:
            return None
        return {None: "relu", 6: "relu6"}.get(config.get("max_value"))
    if isinstance(layer, keras.layers.Activation):
        name = activation_name(layer)
        return name if name in ("relu", "relu6") else None
    return None


def _relus_fuse(users: list[str], layers: dict, selected: set[str]) -> bool:
    """True when every reader of a tensor is a selected ReLU of one kind: the converter merges
    identical ReLUs of one tensor (their ranges tied, `shared_ranges.py`) into one op and fuses
    that into the op before (NASNet's stem conv, read by five ReLUs)."""
    kinds = {fused_kind(layers[u]) if u in layers and u in selected else None for u in users}
    return bool(users) and len(kinds) == 1 and None not in kinds


def _folds_into(layer: keras.layers.Layer) -> bool:
    """A layer whose (last) convolution a following BatchNormalization folds into."""
    return isinstance(layer, FOLDS_INTO) or (
        isinstance(layer, SPLIT_FOLDS_INTO) and quantize_split(layer) is not None
    )


def plan_levels(
    model: keras.Model, configs: dict[keras.layers.Layer, QuantizeConfig | None]
) -> dict[keras.layers.Layer, GraphPlan]:
    """Step 2: the plan of `model` and of every graph model nested in it, by layer (and by
    operation, see `operations.py`).

    A layer is selected (to be quantized) when `configs` gives it a config.
    """
    selected = {layer.name for layer in model.layers if configs.get(layer) is not None}
    passthrough = {
        layer.name for layer in model.layers if configs.get(layer) and configs[layer].is_passthrough
    }
    plan = plan_graph(model, selected, passthrough)
    plans = {layer: plan for layer in [*model.layers, *_operations(model)]}
    for layer in model.layers:
        if is_graph_model(layer):
            plans.update(plan_levels(layer, configs))
    return plans


def plan_graph(
    model: keras.Model, selected: set[str], passthrough: frozenset[str] | set[str] = frozenset()
) -> GraphPlan:
    """Plans folding and fusion among the `selected` (to be quantized) layers of `model`.

    An operation is quantized when it reads from or feeds a selected layer or a
    quantized operation; an Add, Subtract or Multiply one fuses a ReLU after it.
    `passthrough` names the selected layers that keep their input's range (pads, crops,
    max pools): an average pool reading through one that others read too is left unrounded.
    """
    producers, consumers, inputs = edges(model)
    # Decisions depend on the annotated layer, not on its annotation.
    layers = {layer.name: unannotated(layer) for layer in model.layers}
    plan = GraphPlan()
    plan.reads_input = {
        name for name, sources in producers.items() if sources and set(sources) <= inputs
    }
    for name, layer in layers.items():  # in graph order: a chain of them is preprocessing
        sources = set(producers.get(name, []))
        if isinstance(layer, PREPROCESSING) and sources and sources <= inputs | plan.preprocessing:
            plan.preprocessing.add(name)

    def only_consumer(name):
        users = consumers.get(name, [])
        return layers.get(users[0]) if len(users) == 1 and users[0] in layers else None

    for name, layer in layers.items():
        if name not in selected:
            continue
        bn = only_consumer(name)
        if (
            _folds_into(layer)
            and activation_name(layer) == "linear"
            and isinstance(bn, keras.layers.BatchNormalization)
            and consumers[name][0] in selected
            and producers[consumers[name][0]] == [name]
        ):
            plan.folds[name] = model.get_layer(consumers[name][0])
            plan.folded.add(consumers[name][0])
    for name, layer in layers.items():
        standalone = name not in plan.folded and runs_as_depthwise(layer)
        if name not in selected or not (isinstance(layer, FUSES_ACTIVATION) or standalone):
            continue
        last = plan.folds[name].name if name in plan.folds else name
        if _folds_into(layer) and activation_name(layer) != "linear":
            continue  # the activation is inside the layer already
        if _relus_fuse(consumers.get(last, []), layers, selected):
            plan.fused_output.add(name)
    for name, layer in layers.items():
        if name in selected and isinstance(layer, AVERAGE_POOLS):
            source = producers.get(name, [])
            while len(source) == 1 and source[0] in passthrough:
                if len(consumers.get(source[0], [])) > 1:
                    plan.unrounded_pools.add(name)
                    break
                source = producers.get(source[0], [])
    for op in _operations(model):  # in graph order: what an op reads is decided before it
        neighbours = {*producers.get(op.name, []), *consumers.get(op.name, [])}
        if neighbours & (selected | plan.quantized_ops):
            plan.quantized_ops.add(op.name)
            fusable = type(op).__name__ in FUSES_RELU
            if fusable and _relus_fuse(consumers.get(op.name, []), layers, selected):
                plan.fused_output.add(op.name)
    return plan


def _operations(model: keras.Model) -> list[keras.Operation]:
    """The operations of a functional `model` that are not layers, in graph order."""
    if isinstance(model, keras.Sequential):
        return []
    return [op for op in model.operations if is_operation(op)]


def edges(model: keras.Model) -> tuple[dict, dict, set]:
    """Each layer's producers and consumers (by name, `"<output>"` for a model output, and
    `"<shared>"` for a layer called more than once) and the names of the inputs."""
    if isinstance(model, keras.Sequential):  # a chain: no config of its calls to read
        names = ["<input>", *(layer.name for layer in model.layers)]
        producers = {name: [before] for before, name in zip(names, names[1:])}
        consumers = {before: [name] for before, name in zip(names, names[1:])}
        consumers[names[-1]] = ["<output>"]
        return producers, consumers, {"<input>"}
    config = model.get_config()
    consumers: dict[str, list[str]] = {}
    producers: dict[str, list[str]] = {}
    for entry in config["layers"]:
        nodes = entry.get("inbound_nodes", [])
        producers[entry["name"]] = [name for node in nodes for name in _histories(node)]
        if len(nodes) > 1:  # a shared layer: leave it alone
            producers[entry["name"]].append("<shared>")
        for name in producers[entry["name"]]:
            consumers.setdefault(name, []).append(entry["name"])
    for name, _, _ in _as_triples(config["output_layers"]):
        consumers.setdefault(name, []).append("<output>")
    inputs = {name for name, _, _ in _as_triples(config["input_layers"])}
    return producers, consumers, inputs


def _as_triples(value) -> list:
    """`input_layers`/`output_layers` hold one `[name, node, tensor]` or a list of them."""
    if value and isinstance(value[0], str):
        return [value]
    return list(value)
