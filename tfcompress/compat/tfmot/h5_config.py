"""tfmot's wrappers in a tf_keras model config: the plain config, and what each layer had.

`unwrap_config` turns the config of a model saved by tfmot into the config of
the same model without tfmot's layers (each wrapper replaced by the layer it
wraps, each `QuantizeLayer` dropped), which Keras 3 reads as a tf_keras model,
and records, by wrapped layer name, which wrapper it had and with what
arguments (a `Wrapped`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

PRUNE = "PruneLowMagnitude"
CLUSTER = "ClusterWeights"
QUANTIZE = ("QuantizeWrapperV2", "QuantizeWrapper")
ANNOTATE = "QuantizeAnnotate"
QUANTIZE_LAYER = "QuantizeLayer"
WRAPPERS = (PRUNE, CLUSTER, ANNOTATE, *QUANTIZE)

# tfmot's own configs of its default 8-bit scheme: tfcompress's default scheme does the same.
DEFAULT_QUANTIZE_CONFIGS = (
    "Default8BitQuantizeConfig",
    "Default8BitConvQuantizeConfig",
    "Default8BitOutputQuantizeConfig",
    "NoOpQuantizeConfig",
    "OutputOnlyConfig",
)

PRUNING_WAY_OUT = (
    "In tfmot, `tfmot.sparsity.keras.strip_pruning(model).save(path)` saves it plain; "
    "load that and prune it again with tfcompress."
)
CLUSTERING_WAY_OUT = (
    "In tfmot, `tfmot.clustering.keras.strip_clustering(model).save(path)` saves it plain; "
    "load that and cluster it again with tfcompress."
)
QUANTIZATION_WAY_OUT = (
    "Save the float model (before `quantize_model` / `quantize_apply`, or with the QAT "
    "model's float weights copied into it) as `.h5` in tfmot, load it with this function and "
    "quantize it with `tfcompress.quantize_model` (a custom tfmot config becomes a "
    "`tfcompress.quantization.QuantizeConfig`)."
)


@dataclass
class Wrapped:
    """A layer tfmot wrapped: the wrapper's class, name and arguments, and its saved group."""

    kind: str
    name: str
    arguments: dict = field(default_factory=dict)


@dataclass
class UnwrappedConfig:
    """The plain model config, the wrapped layers by their own name, and the saved group of
    each plain layer (the wrapper's name when it was wrapped)."""

    config: dict
    wrapped: dict[str, Wrapped]
    groups: dict[str, str]
    input_quantizers: list[str]


def unwrap_config(config: dict) -> UnwrappedConfig:
    """The plain config of a tfmot model config (see the module).

    Raises:
        ValueError: A wrapper tfcompress cannot load (nested wrappers, a
            custom tfmot `QuantizeConfig`, a pruning policy), naming the layer
            and the way out.
    """
    config = copy.deepcopy(config)
    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise ValueError(
            "tfcompress loads Sequential and functional tf_keras models saved by tfmot. "
            f"Received a model of class {config.get('class_name')!r}."
        )
    body = config["config"]
    result = UnwrappedConfig(config, {}, {}, [])
    renamed: dict[str, list] = {}  # wrapper name -> what takes its place in node references
    layers = []
    for entry in body["layers"]:
        kind = entry["class_name"]
        if kind == QUANTIZE_LAYER:
            _check_input_quantizer(entry)
            result.input_quantizers.append(entry["config"]["name"])
            if "inbound_nodes" in entry:
                renamed[entry["config"]["name"]] = entry["inbound_nodes"][0][0][:3]
            continue
        if kind in WRAPPERS:
            entry = _unwrap(entry, result)
            if "inbound_nodes" in entry:
                renamed[result.groups[entry["name"]]] = [entry["name"]]
        else:
            result.groups[entry["config"]["name"]] = entry["config"]["name"]
        layers.append(entry)
    body["layers"] = layers
    if renamed:
        for entry in layers:
            entry["inbound_nodes"] = [
                [_reference(ref, renamed) for ref in node] for node in entry["inbound_nodes"]
            ]
        for key in ("input_layers", "output_layers"):
            body[key] = [_reference(ref, renamed) for ref in body[key]]
    return result


def _reference(ref: list, renamed: dict) -> list:
    """A node reference `[layer, node, tensor, (kwargs)]` to a renamed or dropped layer."""
    while ref[0] in renamed:
        target = renamed[ref[0]]
        ref = [target[0], *(target[1:] if len(target) > 1 else ref[1:3]), *ref[3:]]
    return ref


def _check_input_quantizer(entry: dict) -> None:
    quantizer = entry["config"].get("quantizer") or {}
    name = quantizer.get("class_name")
    bits = (quantizer.get("config") or {}).get("num_bits", 8)
    if name not in ("AllValuesQuantizer", "MovingAverageQuantizer", "LastValueQuantizer") or (
        bits != 8
    ):
        raise ValueError(
            f"Layer {entry['config']['name']!r}: tfcompress quantizes model inputs to int8 with a "
            f"range; this QuantizeLayer has quantizer {quantizer!r}. {QUANTIZATION_WAY_OUT}"
        )


def _unwrap(entry: dict, result: UnwrappedConfig) -> dict:
    """The entry of the layer inside a wrapper entry; records the wrapper in `result`."""
    kind, wrapper = entry["class_name"], entry["config"]
    inner = wrapper["layer"]
    name = wrapper["name"]
    if inner.get("class_name") in (*WRAPPERS, QUANTIZE_LAYER):
        raise ValueError(
            f"Layer {name!r}: a {kind} around a {inner['class_name']} (tfmot wrappers nested) "
            "cannot be loaded by tfcompress. " + _way_out(kind)
        )
    inner_config = inner["config"]
    inner_name = inner_config["name"]
    arguments = _arguments(kind, wrapper, name)
    if kind in QUANTIZE and "activation" in inner_config:
        inner_config["activation"] = _plain_activation(inner_config["activation"])
    if "batch_input_shape" in wrapper and "batch_input_shape" not in inner_config:
        inner_config["batch_input_shape"] = wrapper["batch_input_shape"]
    # As tf_keras writes a model's layers: without `module`, which Keras 3 reads as tf_keras's.
    plain = {"class_name": inner["class_name"], "config": inner_config}
    if "inbound_nodes" in entry:
        plain["name"] = inner_name
        plain["inbound_nodes"] = entry["inbound_nodes"]
    result.wrapped[inner_name] = Wrapped(kind, name, arguments)
    result.groups[inner_name] = name
    return plain


def _plain_activation(activation):
    """The activation tfmot's QAT wrapper replaced: `QuantizeAwareActivation` wraps the
    original; `NoOpActivation` stands for none (a conv followed by batch norm)."""
    if isinstance(activation, dict):
        if activation.get("class_name") == "QuantizeAwareActivation":
            return _plain_activation(activation["config"]["activation"])
        if activation.get("class_name") == "NoOpActivation":
            return "linear"
    return activation


def _arguments(kind: str, wrapper: dict, name: str) -> dict:
    """tfcompress's arguments for the wrapper, from tfmot's config."""
    if kind == PRUNE:
        if wrapper.get("pruning_policy"):
            raise ValueError(
                f"Layer {name!r}: tfmot's `pruning_policy` is not supported by tfcompress. "
                f"Received: pruning_policy={wrapper['pruning_policy']!r}. {PRUNING_WAY_OUT}"
            )
        schedule = wrapper["pruning_schedule"]
        if schedule.get("class_name") not in ("ConstantSparsity", "PolynomialDecay"):
            raise ValueError(
                f"Layer {name!r}: tfcompress loads tfmot's ConstantSparsity and PolynomialDecay "
                f"schedules. Received: pruning_schedule={schedule!r}. {PRUNING_WAY_OUT}"
            )
        arguments = {
            "pruning_schedule": schedule,
            "block_size": tuple(wrapper.get("block_size", (1, 1))),
            "block_pooling_type": wrapper.get("block_pooling_type", "AVG"),
        }
        if wrapper.get("sparsity_m_by_n"):
            arguments["sparsity_m_by_n"] = tuple(wrapper["sparsity_m_by_n"])
        return arguments
    if kind == CLUSTER:
        for option in ("preserve_sparsity", "cluster_per_channel"):
            if wrapper.get(option):
                raise ValueError(
                    f"Layer {name!r}: tfcompress loads tfmot's per-tensor clustering; this "
                    f"layer has {option}=True. {CLUSTERING_WAY_OUT}"
                )
        init = str(wrapper.get("cluster_centroids_init", "KMEANS_PLUS_PLUS")).split(".")[-1]
        return {
            "number_of_clusters": wrapper["number_of_clusters"],
            "cluster_centroids_init": init,
            "cluster_per_channel": False,
        }
    config = wrapper.get("quantize_config")
    if config is not None and config.get("class_name") not in DEFAULT_QUANTIZE_CONFIGS:
        raise ValueError(
            f"Layer {name!r}: its tfmot QuantizeConfig {config.get('class_name')!r} is not one "
            f"of tfmot's default 8-bit configs {list(DEFAULT_QUANTIZE_CONFIGS)}, so tfcompress "
            f"cannot tell what it quantizes. {QUANTIZATION_WAY_OUT}"
        )
    return {}


def _way_out(kind: str) -> str:
    if kind == PRUNE:
        return PRUNING_WAY_OUT
    if kind == CLUSTER:
        return CLUSTERING_WAY_OUT
    return QUANTIZATION_WAY_OUT
