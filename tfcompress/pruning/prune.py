"""Entry points: `prune_low_magnitude`, `strip_pruning` and `get_sparsity`."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import keras
import numpy as np

from tfcompress.pruning.channel_graph import NOT_REMOVABLE, channel_chains
from tfcompress.pruning.masks import structure_problem
from tfcompress.pruning.prunable import is_prunable_layer, prunable_weights
from tfcompress.pruning.prune_low_magnitude_wrapper import (
    CHANNEL_LAYERS,
    PruneLowMagnitude,
    default_schedule,
)
from tfcompress.pruning.schedule import PruningSchedule, check_sparsity
from tfcompress.pruning.update_pruning_step import collect_wrappers
from tfcompress.reporting.notes import add_note, layer_note
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

    Structure on a whole model: `block_size`, `sparsity_m_by_n` and
    `channel_norm` are applied where they fit. The layers they do not fit (a
    depthwise kernel, `[1, 9C]` as `[out, in]`, under 16x4 blocks; a conv with
    27 inputs) are left dense, and so are the weights they do not fit in a layer
    with several (a SeparableConv2D's depthwise kernel, while its pointwise
    kernel is pruned): one warning lists them all with the reason, and
    `tfcompress.report` shows it per layer. Layers named in `layer_sparsity`,
    and layers given on their own or in a list, must take the structure: one
    error lists all those that cannot. A structure that fits no layer at all
    is an error.

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
    if not isinstance(to_prune, keras.Model):
        layers = to_prune if isinstance(to_prune, (list, tuple)) else [to_prune]
        pruning.refuse_misfits([item for item in layers if isinstance(item, keras.layers.Layer)])
    result = transform(
        to_prune, pruning.for_model, pruning.wrap_layer, "prune_low_magnitude", "to_prune"
    )
    if pruning.left:
        pruning.warn_left(result)
    return result


class _Pruning:
    """Which layers get a pruning wrapper, and with which arguments.

    `removable`: on a model pruned by channel, the layers whose channels
    `shrink` can remove (None: any layer).
    """

    def __init__(self, options: dict, layer_sparsity: LayerSparsity, skip: list):
        self.options = options
        self.layer_sparsity = layer_sparsity
        self.skip = skip
        self.removable: set[str] | None = None
        self.left: dict[str, str] = {}  # layers (partly) left dense on a model -> why

    def for_model(self, model: keras.Model) -> Callable:
        """The per-layer decision for `model` (refused when it is pruned already)."""
        if collect_wrappers(model):
            raise ValueError(
                f"Model {model.name!r} already contains pruning wrappers; call "
                "`strip_pruning` first to prune it again."
            )
        check_layer_names(model, self.skip, "skip")
        if self.options["channel_norm"] is not None:
            require_graph(model, "Channel pruning")
            self.removable = set(channel_chains(model))
        if isinstance(self.layer_sparsity, dict):
            check_layer_names(model, self.layer_sparsity, "layer_sparsity")
            named = [
                layer
                for layer in leaf_layers(model)
                if layer.name in self.layer_sparsity and self.target(layer) != 0.0
            ]
            self.refuse_misfits(named, "named in `layer_sparsity`")
        return self.replace

    def misfit(self, layer: keras.layers.Layer) -> dict[str, str]:
        """`{weight name: why}` for the prunable weights of a built `layer` that the
        structure (block, N:M or channels) does not fit; `{"*": why}` for a whole layer
        (channels) or its one prunable weight."""
        if not layer.built:
            return {}  # the wrapper checks it when it builds it
        if self.options["channel_norm"] is not None:
            if not isinstance(layer, CHANNEL_LAYERS):
                return {
                    "*": f"channel pruning supports Dense and ConvND, not {type(layer).__name__}"
                }
            if self.removable is not None and layer.name not in self.removable:
                return {"*": NOT_REMOVABLE}
            return {}
        block, n_m = self.options["block_size"], self.options["sparsity_m_by_n"]
        weights = prunable_weights(layer) or []
        problems = {w.name: structure_problem(tuple(w.shape), block, n_m) for w in weights}
        problems = {name: why for name, why in problems.items() if why is not None}
        return {"*": problems.popitem()[1]} if len(weights) == 1 and problems else problems

    def refuse_misfits(self, layers: list, how: str = "given explicitly") -> None:
        """Raises one error listing every layer of `layers` the structure does not fit."""
        refused = {}
        for layer in layers:
            if isinstance(layer, PruneLowMagnitude) or not is_prunable_layer(layer):
                continue  # the wrapper's own errors
            problems = self.misfit(layer)
            if problems:
                refused[layer.name] = _reasons(problems)
        if refused:
            listed = "\n".join(f"  {name!r}: {why}" for name, why in refused.items())
            raise ValueError(
                f"{len(refused)} layer(s) {how} cannot take the pruning structure "
                f"({self.structure()}):\n{listed}\nLeave them out (pruning the whole model "
                "prunes what fits and leaves these dense) or pick a structure that fits them."
            )

    def structure(self) -> str:
        """The structure asked for, as the user wrote it."""
        if self.options["channel_norm"] is not None:
            return f"channel_norm={self.options['channel_norm']!r}"
        if self.options["sparsity_m_by_n"] is not None:
            return f"sparsity_m_by_n={tuple(self.options['sparsity_m_by_n'])}"
        return f"block_size={tuple(self.options['block_size'])}"

    def warn_left(self, result) -> None:
        """One warning listing the layers left (partly) dense; an error when nothing fit."""
        listed = "\n".join(f"  {name!r}: {why}" for name, why in self.left.items())
        if isinstance(result, keras.Model) and not collect_wrappers(result):
            raise ValueError(
                f"The pruning structure ({self.structure()}) fits none of the prunable "
                f"layers:\n{listed}\nPick a structure that fits them."
            )
        warnings.warn(
            f"prune_low_magnitude: {self.structure()} does not fit {len(self.left)} layer(s); "
            "what it does not fit is left dense (skip these layers to silence this; "
            f"`tfcompress.report` shows it per layer):\n{listed}",
            stacklevel=3,
        )

    def replace(self, layer: keras.layers.Layer) -> Replacement | None:
        """A layer of a model: wrapped when pruning supports it, it is not skipped and the
        structure fits (some of) it; left dense with a note when it does not."""
        kwargs = self.wrapper_arguments(layer, explicit=False)
        if kwargs is None:
            return None
        problems = self.misfit(layer)
        whole = "*" in problems or (problems and len(problems) == len(prunable_weights(layer)))
        if whole:
            self.left[layer.name] = f"left dense: {_reasons(problems)}"
        elif problems:
            kwargs["strict"] = False
            self.left[layer.name] = "; ".join(
                f"{name} left dense: {why}" for name, why in problems.items()
            )
        if layer.name not in self.left:
            return Replacement(wrap=lambda inner: PruneLowMagnitude(inner, **kwargs))
        note = f"pruning: {self.left[layer.name]}"
        if whole:
            return Replacement(wrap=lambda inner: add_note(inner, note))
        return Replacement(wrap=lambda inner: add_note(PruneLowMagnitude(inner, **kwargs), note))

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


def _reasons(problems: dict[str, str]) -> str:
    """`misfit`'s answer in words."""
    return "; ".join(why if name == "*" else f"{name}: {why}" for name, why in problems.items())


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
    """A pruning wrapper gives way to (a copy of) the layer inside, its weights masked;
    the copies keep the notes on what pruning left dense."""
    note = layer_note(layer)
    unwrap = isinstance(layer, PruneLowMagnitude)
    if note is None:
        return Replacement(unwrap=True) if unwrap else None
    return Replacement(wrap=lambda copy: add_note(copy, note), unwrap=unwrap)


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
