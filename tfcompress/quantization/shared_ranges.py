"""One range for the tensors TFLite gives one scale: a CONCATENATION's inputs and its output.

TFLite's int8 CONCATENATION (like the pooling and reshaping ops between) reads
and writes one scale. When QAT gives its inputs ranges of their own, the
converter puts an int8 -> int8 QUANTIZE (a requantize) before the concat for
every input it cannot rescale in place: one that another layer also reads, such
as DenseNet's running concatenation, read by the next block's BatchNormalization
and by the next concat. `tie_shared_ranges` finds these groups of tensors in a
QAT model and makes one concat in each (the last in graph order, whose output
holds every other member's values in a chain of concats) lead: the others
fake-quantize with its range, which it copies into their range variables as it
moves, so the Keras model computes what the int8 file does and each layer saves
the range it uses.

Identical ReLUs (or ReLU6s) of one tensor are one op in the int8 file: the
converter merges them (and fuses the one left into the op before when they are
that tensor's only readers, see `graph_plan`), so they share one range too.

An average pool (AVERAGE_POOL_2D) also writes its input's scale, rounding each
mean to it: its output range follows its input's (or that input's group
leader), so QAT rounds the means as the int8 file does (NASNet's 40 pools,
unrounded, put a quarter of a step of error on average into every normal cell).
An average pool whose input has no range at this graph level keeps its own;
one `graph_plan` leaves unrounded passes its input's range on, as before.
"""

from __future__ import annotations

import keras

from tfcompress.quantization.activation_quantizer import RangeTie
from tfcompress.quantization.graph_plan import AVERAGE_POOLS, edges, fused_kind
from tfcompress.quantization.operations import KEEPS_RANGE, is_operation
from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.registry import default_quantize_config

SAME_SCALE = (keras.layers.Concatenate,)


def _rounds_to_input(layer: keras.Operation) -> bool:
    return isinstance(layer, QuantizeWrapper) and isinstance(layer.layer, AVERAGE_POOLS)


def _holder(layer: keras.Operation) -> keras.Operation | None:
    """The layer whose output range quantizes `layer`'s output tensor, or None."""
    if isinstance(layer, keras.Sequential) and layer.layers:  # a split SeparableConv2D
        layer = layer.layers[-1]
    if isinstance(layer, QuantizeWrapper):
        return layer if layer.output_ranges is not None else None
    if isinstance(layer, QuantizeLayer):
        return layer
    return None


def _passes_range(layer: keras.Operation) -> bool:
    """A layer or operation whose output keeps its input's scale in the int8 model."""
    if _rounds_to_input(layer) or isinstance(layer, AVERAGE_POOLS):  # rounded or not
        return True
    if is_operation(layer):
        return type(layer).__name__ in KEEPS_RANGE
    if isinstance(layer, (QuantizeWrapper, QuantizeLayer, keras.Model)):
        return False
    config = default_quantize_config(layer)
    return config is not None and config.is_passthrough


def tie_shared_ranges(model: keras.Model) -> list[list[str]]:
    """Makes the tensors that must share an int8 scale share one range (see the module).

    Returns the groups tied, each as the names of its layers, leader first.
    Only the model's own graph level is tied (not models nested in it).
    """
    if isinstance(model, keras.Sequential) or not model.layers:
        return []
    producers, _, _ = edges(model)
    by_name = {op.name: op for op in model.operations}

    def source(name: str) -> keras.Operation | None:
        seen = set()
        while name in by_name and name not in seen:
            seen.add(name)
            layer = by_name[name]
            holder = None if _rounds_to_input(layer) else _holder(layer)
            if holder is not None:
                return holder
            sources = producers.get(name, [])
            if not _passes_range(layer) or len(sources) != 1:
                return None
            name = sources[0]
        return None

    order = {id(op): i for i, op in enumerate(model.operations)}
    layers: dict[int, keras.Operation] = {}  # every layer in a group, by id
    parent: dict[int, int] = {}  # union-find; a root is the latest in graph order

    def find(key: int) -> int:
        while parent[key] != key:
            key = parent[key]
        return key

    def union(a: keras.Operation, b: keras.Operation) -> None:
        for layer in (a, b):
            layers.setdefault(id(layer), layer)
            parent.setdefault(id(layer), id(layer))
        first, last = sorted((find(id(a)), find(id(b))), key=lambda key: order.get(key, -1))
        parent[first] = last

    for op in model.operations:
        if not (isinstance(op, QuantizeWrapper) and isinstance(op.layer, SAME_SCALE)):
            continue
        if op.output_ranges is None or "<shared>" in producers.get(op.name, []):
            continue
        for name in producers.get(op.name, []):
            holder = source(name)
            if holder is not None and holder is not op:
                union(op, holder)
    relus: dict[tuple[str, str], list[QuantizeWrapper]] = {}  # by (tensor read, kind)
    for op in model.operations:
        kind = isinstance(op, QuantizeWrapper) and op.output_ranges is not None
        kind = kind and fused_kind(op.layer)
        sources = producers.get(op.name, [])
        if kind and len(sources) == 1:
            relus.setdefault((sources[0], kind), []).append(op)
    for same in relus.values():
        for other in same[1:]:
            union(same[0], other)
    groups: dict[int, list[keras.Operation]] = {}
    for key, layer in layers.items():
        groups.setdefault(find(key), []).append(layer)
    tied = []
    for root, group in groups.items():
        leader = layers[root]
        followers = [layer for layer in group if layer is not leader]
        for layer in followers:
            follow(layer, leader)
        tied.append([leader.name, *sorted(layer.name for layer in followers)])
    for op in model.operations:  # average pools follow their input's range
        sources = producers.get(op.name, [])
        if not _rounds_to_input(op) or op.output_ranges is None or len(sources) != 1:
            continue
        holder = source(sources[0])
        if holder is None:
            continue
        leader = layers[find(id(holder))] if id(holder) in parent else holder
        follow(op, leader)
        tied.append([leader.name, op.name])
    return tied


def _tie(layer: QuantizeWrapper | QuantizeLayer) -> tuple[RangeTie, dict]:
    if isinstance(layer, QuantizeLayer):
        return layer.tie, layer.ranges
    return layer.output_tie, layer.output_ranges


def follow(layer: QuantizeWrapper | QuantizeLayer, leader: QuantizeWrapper | QuantizeLayer) -> None:
    """Makes `layer` fake-quantize its output with `leader`'s range (see the module)."""
    (tie, ranges), (leader_tie, leader_ranges) = _tie(layer), _tie(leader)
    tie.leader, tie.followers = leader_ranges, []
    if not any(f is ranges for f in leader_tie.followers):
        leader_tie.followers.append(ranges)
