"""Entry points: `prune_low_magnitude`, `strip_pruning` and `get_sparsity`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np

from tfcompress.pruning.channel_graph import channel_chains
from tfcompress.pruning.prunable import is_prunable_layer, prunable_weights
from tfcompress.pruning.prune_low_magnitude_wrapper import PruneLowMagnitude, default_schedule
from tfcompress.pruning.schedule import PruningSchedule, check_sparsity
from tfcompress.pruning.update_pruning_step import collect_wrappers
from tfcompress.utils.surgery import (
    Replacement,
    leaf_layers,
    require_graph,
    transform,
    transform_model,
)
from tfcompress.utils.validation import check_layer_names

LayerSparsity = dict[str, float] | Callable[[keras.layers.Layer], float | None] | None
SCOPES = ("layer", "global")


def prune_low_magnitude(
    to_prune: keras.layers.Layer | list | keras.Model,
    pruning_schedule: PruningSchedule | None = None,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    sparsity_m_by_n: tuple[int, int] | None = None,
    layer_sparsity: LayerSparsity = None,
    skip: Iterable[str | type] = (),
    scope: str = "layer",
    channel_norm: str | None = None,
    importance: str = "magnitude",
):
    """Wraps a layer, a list of layers, or a whole model for magnitude pruning.

    Same name and first arguments as `tfmot.sparsity.keras.prune_low_magnitude`.
    Train the result with `UpdatePruningStep` among the callbacks, then call
    `strip_pruning` for a plain Keras model with the zeros in place.

    Models: Sequential and functional models (nested ones included) are
    cloned with every supported layer wrapped and the weights copied. A built
    subclassed model is re-created from its `get_config()` with its layer
    attributes wrapped, built from its build config, and given the original's
    weights (see `tfcompress.utils.surgery`); its class needs a working
    `get_config()`, otherwise wrap its layers with `prune_low_magnitude(layer)`
    in `__init__`. Either way the original is left untouched. Layers without
    prunable weights (BatchNormalization, pooling, Add, ...) and layers pruning
    does not know pass through untouched.

    Args:
        to_prune: A layer, a list of layers, or a model.
        pruning_schedule: When and how far to prune (default
            `ConstantSparsity(0.5, begin_step=0)`).
        block_size: `(out, in)` tile pruned as a whole, e.g. `(16, 4)` for our
            int8 kernel; see `PruneLowMagnitude` for how tiles map onto kernels.
        block_pooling_type: `"AVG"` or `"MAX"` pooling of a tile's magnitudes.
        sparsity_m_by_n: `(n, m)` N:M structure, e.g. `(2, 4)`.
        layer_sparsity: Per-layer target sparsity overriding the schedule's:
            a dict `{layer_name: sparsity}` or a function `layer -> sparsity`
            (None keeps the schedule's). A target of 0 leaves the layer unwrapped.
        skip: Layer names or classes that are not pruned.
        scope: `"layer"` (each layer reaches the sparsity on its own) or
            `"global"` (one magnitude threshold across all pruned layers, so
            sensitive small layers keep more weights).
        channel_norm: `"L1"` or `"L2"`: prune whole units/filters of the lowest
            norm instead of single weights, then `shrink` the stripped model.
            On a model only the Dense/ConvND layers whose channels `shrink` can
            remove are wrapped (not those feeding an Add, a Concatenate or an
            output); flat Sequential and functional models only.
        importance: `"magnitude"` (`|w|`) or `"taylor"` (`|w * dL/dw|` summed
            over the batches since the last mask update); see `PruneLowMagnitude`.

    Returns:
        The wrapped layer, list of wrapped layers, or pruned model.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")], name="mlp")
        >>> pruned = tfcompress.prune_low_magnitude(
        ...     model, tfcompress.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=4,
        ...                                       frequency=1),
        ...     block_size=(16, 4), skip=["logits"])
        >>> pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = pruned.fit(data.x_train[:128], data.y_train[:128], batch_size=16,
        ...                      epochs=1, verbose=0, callbacks=[tfcompress.UpdatePruningStep()])
        >>> final = tfcompress.strip_pruning(pruned)
        >>> tfcompress.get_sparsity(final)
        {'mlp/fc1/kernel': 0.75, 'mlp/logits/kernel': 0.0}
    """
    if scope not in SCOPES:
        raise ValueError(f"`scope` must be one of {SCOPES}. Received: scope={scope!r}")
    if scope == "global" and layer_sparsity is not None:
        raise ValueError(
            "`layer_sparsity` sets per-layer targets, which a global threshold cannot honour; "
            f"use scope='layer' with it. Received: scope={scope!r}"
        )
    options = {
        "pruning_schedule": pruning_schedule,
        "block_size": block_size,
        "block_pooling_type": block_pooling_type,
        "sparsity_m_by_n": sparsity_m_by_n,
        "pruning_group": "global" if scope == "global" else None,
        "channel_norm": channel_norm,
        "importance": importance,
    }
    pruning = _Pruning(options, layer_sparsity, list(skip))
    return transform(
        to_prune, pruning.for_model, pruning.wrap_layer, "prune_low_magnitude", "to_prune"
    )


class _Pruning:
    """Which layers get a pruning wrapper, and with which arguments.

    `removable`: on a model pruned by channel, the layers whose channels
    `shrink` can remove (None: any layer).
    """

    def __init__(self, options: dict, layer_sparsity: LayerSparsity, skip: list, removable=None):
        self.options = options
        self.layer_sparsity = layer_sparsity
        self.skip = skip
        self.removable = removable

    def for_model(self, model: keras.Model) -> Callable:
        """The per-layer decision for `model` (refused when it is pruned already)."""
        if collect_wrappers(model):
            raise ValueError(
                f"Model {model.name!r} already contains pruning wrappers; call "
                "`strip_pruning` first to prune it again."
            )
        check_layer_names(model, self.skip, "skip")
        if isinstance(self.layer_sparsity, dict):
            check_layer_names(model, self.layer_sparsity, "layer_sparsity")
        if self.options["channel_norm"] is None:
            return self.replace
        require_graph(model, "Channel pruning")
        removable = set(channel_chains(model))
        return _Pruning(self.options, self.layer_sparsity, self.skip, removable).replace

    def replace(self, layer: keras.layers.Layer) -> Replacement | None:
        """A layer of a model: wrapped when pruning supports it and it is not skipped."""
        kwargs = self.wrapper_arguments(layer, explicit=False)
        if kwargs is None:
            return None
        return Replacement(wrap=lambda inner: PruneLowMagnitude(inner, **kwargs))

    def wrap_layer(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """A layer given on its own: wrapped unless skipped (unsupported ones raise)."""
        kwargs = self.wrapper_arguments(layer, explicit=True)
        return layer if kwargs is None else PruneLowMagnitude(layer, **kwargs)

    def wrapper_arguments(self, layer: keras.layers.Layer, explicit: bool) -> dict | None:
        """The `PruneLowMagnitude` arguments for `layer`, or None to leave it unwrapped."""
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(
                f"Layer {layer.name!r} is already wrapped for pruning; call `strip_pruning` "
                "first to prune it again."
            )
        skipped = layer.name in self.skip or any(
            isinstance(s, type) and isinstance(layer, s) for s in self.skip
        )
        if not explicit and (skipped or not is_prunable_layer(layer) or not _has_prunable(layer)):
            return None
        if not explicit and self.removable is not None and layer.name not in self.removable:
            return None
        kwargs = dict(self.options)
        target = self.target(layer)
        if target == 0.0:
            return None
        if target is not None:
            schedule = self.options["pruning_schedule"] or default_schedule()
            kwargs["pruning_schedule"] = schedule.with_target(target)
        return kwargs

    def target(self, layer: keras.layers.Layer) -> float | None:
        """`layer_sparsity`'s target for `layer` (None: the schedule's)."""
        if self.layer_sparsity is None:
            return None
        value = (
            self.layer_sparsity.get(layer.name)
            if isinstance(self.layer_sparsity, dict)
            else self.layer_sparsity(layer)
        )
        return None if value is None else check_sparsity(f"layer_sparsity[{layer.name!r}]", value)


def _has_prunable(layer: keras.layers.Layer) -> bool:
    return not layer.built or bool(prunable_weights(layer))


def strip_pruning(model: keras.Model | PruneLowMagnitude):
    """Removes pruning wrappers: a plain Keras model (or layer) with the zeros in place.

    Sequential and functional models are cloned; subclassed models are
    re-created from their config with plain layers (see `prune_low_magnitude`).
    The pruned weights are multiplied by their masks.
    """
    if isinstance(model, PruneLowMagnitude):
        model.apply_masks()
        model.remove_constraints()
        return model.layer
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model or a PruneLowMagnitude layer. "
            f"Received: type {type(model).__name__}"
        )
    for wrapper in collect_wrappers(model):
        wrapper.apply_masks()
    return transform_model(model, _unpruned)


def _unpruned(layer: keras.layers.Layer) -> Replacement | None:
    """A pruning wrapper gives way to (a copy of) the layer inside, its weights masked."""
    return Replacement(unwrap=True) if isinstance(layer, PruneLowMagnitude) else None


def get_sparsity(model: keras.Model | keras.layers.Layer) -> dict[str, float]:
    """Achieved sparsity (fraction of zeros) of each prunable weight, by weight path.

    Works on pruned models (wrappers) and on stripped or plain models alike.
    """
    result = {}
    for layer in leaf_layers(model, (PruneLowMagnitude,)):
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        for weight in prunable_weights(inner) or []:
            value = keras.ops.convert_to_numpy(weight)
            result[weight.path] = float(1.0 - np.count_nonzero(value) / value.size)
    return result
