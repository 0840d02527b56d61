"""Step 3 of `quantize_apply`: what each layer becomes, and how the rebuilt graph calls it."""

from __future__ import annotations

import keras

from tfcompress.quantization.graph_plan import GraphPlan
from tfcompress.quantization.input_quantizers import InputQuantizers
from tfcompress.quantization.operations import gets_output_range, is_operation
from tfcompress.quantization.quantize_annotate import unannotated
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.registry import (
    default_quantize_config,
    quantize_split,
    unregistered_error,
)
from tfcompress.quantization.scheme import QuantizeScheme
from tfcompress.quantization.standalone_batch_norm import identity_depthwise, runs_as_depthwise
from tfcompress.utils.surgery import built_copy


class LayerQuantizer:
    """Replaces the layers of an annotated model and calls them in the rebuilt graph.

    `replace` (a `clone_graph` replace function) turns each layer into a
    built copy: float when it has no config, else a `QuantizeWrapper` (with
    the BatchNormalization folded into it, without an output range when a
    fused activation follows), the registered split of the layer (its last
    part absorbing the BN), or, for a BN with no convolution before it, an
    identity depthwise convolution with the BN folded in. It records the role
    of each new layer, which `call` (a `clone_graph` call function) then
    honours: a folded BatchNormalization is skipped, float preprocessing of a
    model input runs before the input quantizer, the float model inputs of
    quantized layers and nested models are quantized, and the operations the
    plan quantizes get an output range.

    Args:
        configs: Step 1's config of each annotated layer (None: keep float).
        plans: Step 2's plan of each layer's model.
        scheme: The scheme (sparsity and cluster preservation of the wrappers).
        inputs: The new model inputs and their quantizers.
    """

    def __init__(
        self,
        configs: dict[keras.layers.Layer, QuantizeConfig | None],
        plans: dict[keras.layers.Layer, GraphPlan],
        scheme: QuantizeScheme,
        inputs: InputQuantizers,
    ):
        self.configs = configs
        self.plans = plans
        self.scheme = scheme
        self.inputs = inputs
        self.folded: set[keras.layers.Layer] = set()  # new BNs living on inside the conv before
        self.preprocessing: set[keras.layers.Layer] = set()  # float, before the input quantizer
        self.quantized: set[keras.layers.Layer] = set()  # their float model inputs get quantized
        self.depthwise_batch_norms: set[keras.layers.Layer] = set()  # called without BN's `mask`

    def replace(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """The new layer taking `layer`'s place (built, holding its weights)."""
        new = self._new_layer(layer)
        plan = self.plans.get(layer)
        if plan is not None and layer.name in plan.folded:
            self.folded.add(new)
        return new

    def _new_layer(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        config = self.configs.get(layer)
        inner = unannotated(layer)
        if config is None:
            return built_copy(inner)
        plan = self.plans[layer]
        if config.is_passthrough or layer.name in plan.unrounded_pools:
            new = built_copy(inner)
        elif layer.name in plan.preprocessing:
            new = built_copy(inner)
            self.preprocessing.add(new)
            return new
        elif layer.name not in plan.folded and runs_as_depthwise(inner):
            new = self._as_depthwise(inner, config, layer.name in plan.fused_output)
            self.depthwise_batch_norms.add(new)
        else:
            bn = plan.folds.get(layer.name)
            folded = None if bn is None else built_copy(unannotated(bn))
            fused = layer.name in plan.fused_output
            if quantize_split(inner) is not None:
                new = self._split(built_copy(inner), config, folded, fused)
            else:
                if fused:
                    config = QuantizeConfig(config.weight_quantizers, None)
                new = self.wrap(built_copy(inner), config, folded)
        self.quantized.add(new)
        return new

    def wrap(
        self,
        layer: keras.layers.Layer,
        config: QuantizeConfig,
        batch_norm: keras.layers.BatchNormalization | None = None,
    ) -> QuantizeWrapper:
        """`layer` in a `QuantizeWrapper` preserving what the scheme says."""
        return QuantizeWrapper(
            layer,
            config,
            batch_norm=batch_norm,
            preserve_sparsity=self.scheme.preserve_sparsity,
            preserve_clusters=self.scheme.preserve_clusters,
        )

    def _as_depthwise(
        self, batch_norm: keras.layers.BatchNormalization, config: QuantizeConfig, fused: bool
    ) -> QuantizeWrapper:
        """A standalone BN folded into an identity 1x1 depthwise convolution (see
        `standalone_batch_norm.py`), with the BN's output quantizer."""
        depthwise = identity_depthwise(batch_norm)
        weights = default_quantize_config(depthwise).weight_quantizers
        output = None if fused else config.output_quantizer
        return self.wrap(depthwise, QuantizeConfig(weights, output), built_copy(batch_norm))

    def _split(
        self,
        layer: keras.layers.Layer,
        config: QuantizeConfig,
        batch_norm: keras.layers.BatchNormalization | None = None,
        fused_output: bool = False,
    ) -> keras.Sequential:
        """The registered split of `layer`, each part quantized with its own config.

        The parts take the weight bits and the output quantizer of `layer`'s
        config; the last one absorbs `batch_norm` (when given) and, with
        `fused_output`, leaves its output to the fused activation after it.
        """
        bits = {q.bits for q in config.weight_quantizers.values()}
        bits = bits.pop() if len(bits) == 1 else None
        split = quantize_split(layer)(layer)
        parts = []
        for i, part in enumerate(split):
            part_config = default_quantize_config(part)
            if part_config is None:
                raise unregistered_error(part)
            if part_config.is_passthrough:
                parts.append(part)
                continue
            if bits is not None:
                part_config = part_config.with_weight_bits(bits)
            last = i == len(split) - 1
            output = None if last and fused_output else config.output_quantizer
            part_config = QuantizeConfig(part_config.weight_quantizers, output)
            parts.append(self.wrap(part, part_config, batch_norm if last else None))
        return keras.Sequential(parts, name=layer.name)

    def call(self, layer: keras.Operation, *args, **kwargs):
        """Calls a new layer (or an operation, see `operations.py`) in the rebuilt graph, as
        its role says."""
        if is_operation(layer):
            return self._call_operation(layer, args, kwargs)
        if layer in self.folded:
            return args[0]  # the BN lives on inside the convolution before it
        if layer in self.preprocessing:  # float, quantized where the int8 model begins
            return self.inputs.add_float_input(layer(*args, **kwargs))
        if layer in self.depthwise_batch_norms:
            kwargs = {k: v for k, v in kwargs.items() if k == "training"}
        if layer in self.quantized or isinstance(layer, keras.Model):
            args = keras.tree.map_structure(self.inputs.quantize_input, args)
        return layer(*args, **kwargs)

    def _call_operation(self, op: keras.Operation, args: tuple, kwargs: dict):
        """Runs `op`; a quantized one reads quantized model inputs, and its float output gets a
        `QuantizeLayer` named `quantize_<op>` when the int8 model needs a range there."""
        plan = self.plans.get(op)
        if plan is None or op.name not in plan.quantized_ops:
            return op(*args, **kwargs)
        outputs = op(*keras.tree.map_structure(self.inputs.quantize_input, args), **kwargs)
        if op.name in plan.fused_output or not gets_output_range(op):
            return outputs
        return keras.tree.map_structure(lambda t: self._output_range(op, t), outputs)

    def _output_range(self, op: keras.Operation, tensor):
        if not isinstance(tensor, keras.KerasTensor) or "float" not in str(tensor.dtype):
            return tensor
        quantizer = QuantizeLayer(self.scheme.activation_quantizer(), name=f"quantize_{op.name}")
        return quantizer(tensor)
