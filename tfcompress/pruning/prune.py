"""Entry points: `prune_low_magnitude`, `strip_pruning` and `get_sparsity`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np

from tfcompress.pruning.prunable import is_prunable_layer, prunable_weights
from tfcompress.pruning.prune_low_magnitude_wrapper import PruneLowMagnitude, default_schedule
from tfcompress.pruning.schedule import PruningSchedule, check_sparsity
from tfcompress.pruning.subclassed import rebuild_subclassed
from tfcompress.pruning.update_pruning_step import collect_wrappers, leaf_layers
from tfcompress.utils.cloning import clone_graph, copy_into, fresh_copy, is_graph_model

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
    weights (see `tfcompress.pruning.subclassed`); its class needs a working
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
        >>> pruned = prune_low_magnitude(
        ...     model, PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000),
        ...     block_size=(16, 4), skip=["logits"])
        >>> pruned.compile(...)
        >>> pruned.fit(x, y, callbacks=[UpdatePruningStep()])
        >>> final = strip_pruning(pruned)
    """
    if scope not in SCOPES:
        raise ValueError(f"`scope` must be one of {SCOPES}. Received: scope={scope!r}")
    if scope == "global" and layer_sparsity is not None:
        raise ValueError(
            "`layer_sparsity` sets per-layer targets, which a global threshold cannot honour; "
            f"use scope='layer' with it. Received: scope={scope!r}"
        )
    skip = list(skip)
    options = {
        "pruning_schedule": pruning_schedule,
        "block_size": block_size,
        "block_pooling_type": block_pooling_type,
        "sparsity_m_by_n": sparsity_m_by_n,
        "pruning_group": "global" if scope == "global" else None,
        "channel_norm": channel_norm,
        "importance": importance,
    }
    removable = None

    def target_for(layer) -> float | None:
        if layer_sparsity is None:
            return None
        value = (
            layer_sparsity.get(layer.name)
            if isinstance(layer_sparsity, dict)
            else layer_sparsity(layer)
        )
        return None if value is None else check_sparsity(f"layer_sparsity[{layer.name!r}]", value)

    def wrap(layer, explicit: bool):
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(
                f"Layer {layer.name!r} is already wrapped for pruning; call `strip_pruning` "
                "first to prune it again."
            )
        skipped = layer.name in skip or any(
            isinstance(s, type) and isinstance(layer, s) for s in skip
        )
        if not explicit and (skipped or not is_prunable_layer(layer) or not _has_prunable(layer)):
            return None
        if not explicit and removable is not None and layer.name not in removable:
            return None
        kwargs = dict(options)
        target = target_for(layer)
        if target == 0.0:
            return None
        if target is not None:
            schedule = pruning_schedule or default_schedule()
            kwargs["pruning_schedule"] = schedule.with_target(target)
        return kwargs

    if isinstance(to_prune, keras.Model):
        if not to_prune.built:
            raise ValueError(
                f"prune_low_magnitude: model {to_prune.name!r} was never built; build it (or "
                "define it with `keras.Input`) first."
            )
        if collect_wrappers(to_prune):
            raise ValueError(
                f"Model {to_prune.name!r} already contains pruning wrappers; call "
                "`strip_pruning` first to prune it again."
            )
        if not is_graph_model(to_prune):
            if channel_norm is not None:
                raise ValueError(
                    f"Channel pruning needs a layer graph; model {to_prune.name!r} is subclassed."
                )

            def swap(fresh, old):
                kwargs = wrap(old, explicit=False)
                return fresh if kwargs is None else PruneLowMagnitude(fresh, **kwargs)

            return rebuild_subclassed(to_prune, swap)
        if channel_norm is not None:
            from tfcompress.pruning.channel_graph import channel_chains

            removable = set(channel_chains(to_prune))

        def replace(layer):  # nested models are recursed into, never passed here
            kwargs = wrap(layer, explicit=False)
            if kwargs is None:
                new = fresh_copy(layer)
                return new, copy_into(layer, new)
            inner = fresh_copy(layer)
            return PruneLowMagnitude(inner, **kwargs), copy_into(layer, inner)

        return clone_graph(to_prune, replace)
    if isinstance(to_prune, (list, tuple)):
        return [prune_low_magnitude(layer, **_explicit(options, layer_sparsity, skip, scope))
                for layer in to_prune]  # fmt: skip
    if isinstance(to_prune, keras.layers.Layer):
        kwargs = wrap(to_prune, explicit=True)
        return to_prune if kwargs is None else PruneLowMagnitude(to_prune, **kwargs)
    raise TypeError(
        "`to_prune` must be a keras.layers.Layer, a list of layers or a keras.Model. "
        f"Received: type {type(to_prune).__name__}"
    )


def _explicit(options: dict, layer_sparsity, skip, scope) -> dict:
    kwargs = {k: v for k, v in options.items() if k != "pruning_group"}
    return {**kwargs, "layer_sparsity": layer_sparsity, "skip": skip, "scope": scope}


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
    if not is_graph_model(model):
        return rebuild_subclassed(
            model, lambda fresh, old: fresh.layer if isinstance(fresh, PruneLowMagnitude) else fresh
        )

    def replace(layer):
        source = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        new = fresh_copy(source)
        return new, copy_into(source, new)

    return clone_graph(model, replace)


def get_sparsity(model: keras.Model | keras.layers.Layer) -> dict[str, float]:
    """Achieved sparsity (fraction of zeros) of each prunable weight, by weight path.

    Works on pruned models (wrappers) and on stripped or plain models alike.
    """
    result = {}
    for layer in leaf_layers(model):
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        for weight in prunable_weights(inner) or []:
            value = keras.ops.convert_to_numpy(weight)
            result[weight.path] = float(1.0 - np.count_nonzero(value) / value.size)
    return result
