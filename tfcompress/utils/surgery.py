"""Model surgery: a copy of what the user passed with some layers replaced, for every technique.

Pruning, clustering, QAT and factorization (and their strips) all take a layer,
a list of layers, a Sequential, functional or nested model, or a built
subclassed model, and give back a copy in which some layers are wrapped,
unwrapped or replaced. This module walks those inputs, clones, copies the
weights and words the errors; a technique only says, layer by layer, what
takes each one's place (`replace`):

- `None`: a copy of the layer holding its weights;
- a `Replacement`: a copy of the layer (or of the layer inside a wrapper),
  possibly wrapped, receiving the original's or given weights;
- a layer: used as it is (it holds its weights already).

Sequential and functional models (nested ones too) are cloned with
`keras.models.clone_model`. A built Keras layer refuses new sub-layers, so a
subclassed model is re-created from its `get_config()`: the layers its class
makes are wrapped while unbuilt, the model is built from the original's build
config, and every layer receives its weights by attribute name. A subclassed
model's structure is its class's, so there a replacement layer only lends its
weights to the class's own layer. The original is left untouched either way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

MODEL_OR_LAYERS = "a keras.layers.Layer, a list of layers or a keras.Model"


@dataclass(frozen=True)
class Replacement:
    """What takes a layer's place: a fresh copy of it, possibly wrapped.

    Attributes:
        wrap: Makes the new layer from the copy (for example a wrapper around
            it); None keeps the copy itself.
        built: Build the copy and give it the original's weights before `wrap`
            sees it (a wrapper that reads the weights when it is made).
        unwrap: Copy the layer inside the original wrapper instead (stripping).
        weights: The weights the copy receives once the new model is built;
            None: those of the layer copied.
    """

    wrap: Callable[[keras.layers.Layer], keras.layers.Layer] | None = None
    built: bool = False
    unwrap: bool = False
    weights: Callable[[], list[np.ndarray]] | None = None


Replace = Callable[[keras.layers.Layer], "Replacement | keras.layers.Layer | None"]
KEEP = Replacement()
Copy = Callable[[], None] | None  # copies weights once the new model is built


def is_graph_model(model: keras.layers.Layer) -> bool:
    """Sequential and functional models have a layer graph that can be cloned."""
    if not isinstance(model, keras.Model):
        return False
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def check_model(model, entry: str, argument: str, expected: str = "a keras.Model") -> keras.Model:
    """`model` when it is a built Keras model; a TypeError or ValueError naming `entry` if not."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{entry}: `{argument}` must be {expected}. "
            f"Received: {argument} of type {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"{entry}: model {model.name!r} was never built; build it (or define it with "
            "`keras.Input`) first."
        )
    return model


def require_graph(model: keras.Model, what: str, advice: str = "") -> None:
    """Raises when `model` is subclassed: `what` needs its layer graph."""
    if not is_graph_model(model):
        raise ValueError(
            f"{what} needs a Sequential or functional model; model {model.name!r} is subclassed."
            + (f" {advice}" if advice else "")
        )


def leaf_layers(
    layer: keras.layers.Layer, wrappers: tuple[type, ...] = ()
) -> list[keras.layers.Layer]:
    """The layers inside `layer`, looking into nested models and through wrappers.

    Instances of `wrappers` count as leaves themselves; any other
    `keras.layers.Wrapper` is looked through to the layer it wraps.
    """
    if isinstance(layer, wrappers):
        return [layer]
    if isinstance(layer, keras.Model):
        children = layer.layers
    elif isinstance(layer, keras.layers.Wrapper):
        children = [layer.layer]
    else:
        return [layer]
    return [leaf for child in children for leaf in leaf_layers(child, wrappers)]


def collect(layer: keras.layers.Layer, kind: type) -> list:
    """Every `kind` layer inside `layer` (models and other wrappers nested at any depth)."""
    return [leaf for leaf in leaf_layers(layer, (kind,)) if isinstance(leaf, kind)]


def graph_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers `clone_graph` hands to `replace`: `model`'s and those of the Sequential and
    functional models nested in it (input layers are re-created, never handed over)."""
    found = []
    for layer in model.layers:
        if is_graph_model(layer):
            found.extend(graph_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def fresh_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new, unbuilt layer from `layer`'s config."""
    return layer.__class__.from_config(layer.get_config())


def built_like(fresh: keras.layers.Layer, old: keras.layers.Layer) -> keras.layers.Layer:
    """`fresh` built like `old` and holding its weights (when `old` is built)."""
    build_config = old.get_build_config() if old.built else None
    if build_config:
        fresh.build_from_config(build_config)
        fresh.set_weights(old.get_weights())
    return fresh


def built_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new layer from `layer`'s config, built and holding `layer`'s weights."""
    return built_like(fresh_copy(layer), layer)


def transform(
    to_transform: keras.layers.Layer | list | keras.Model,
    replace_in: Callable[[keras.Model], Replace],
    replace_layer: Callable[[keras.layers.Layer], keras.layers.Layer],
    entry: str,
    argument: str,
):
    """A layer, a list of them, or a model, with layers replaced.

    Args:
        to_transform: What the user passed.
        replace_in: Called with each (built) model: raises when the technique
            refuses it, else returns its per-layer `replace` (see the module).
        replace_layer: What a layer given on its own (or in a list) becomes.
        entry: The entry point, for errors (`"prune_low_magnitude"`).
        argument: Its argument, for errors (`"to_prune"`).

    Raises:
        TypeError: `to_transform` is none of the above.
        ValueError: A model that was never built (or that `replace_in` refuses).
    """
    if isinstance(to_transform, keras.Model):
        check_model(to_transform, entry, argument, MODEL_OR_LAYERS)
        return transform_model(to_transform, replace_in(to_transform))
    if isinstance(to_transform, (list, tuple)):
        return [
            transform(item, replace_in, replace_layer, entry, argument) for item in to_transform
        ]
    if isinstance(to_transform, keras.layers.Layer):
        return replace_layer(to_transform)
    raise TypeError(
        f"{entry}: `{argument}` must be {MODEL_OR_LAYERS}. "
        f"Received: {argument} of type {type(to_transform).__name__}"
    )


def transform_model(model: keras.Model, replace: Replace) -> keras.Model:
    """A copy of a graph or subclassed model with each layer going through `replace`."""
    if is_graph_model(model):
        return clone_graph(model, replace)
    return rebuild_subclassed(model, replace)


def clone_graph(
    model: keras.Model,
    replace: Replace,
    call: Callable | None = None,
    input_tensors=None,
) -> keras.Model:
    """Clones a Sequential/functional model (nested ones too), each layer through `replace`.

    `call(layer, *args, **kwargs)` calls each new layer while the graph is
    rebuilt (on `input_tensors`), as `keras.models.clone_model`'s
    `call_function` does; with one, a Sequential model comes back functional.
    Weights are copied once the whole clone is built.
    """
    copies = []

    def clone_layer(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer  # an operation from operator syntax or `keras.ops` (`x + y`): no state
        new, copy_weights = _graph_replacement(layer, replace(layer))
        if copy_weights is not None:
            copies.append(copy_weights)
        return new

    if call is not None and isinstance(model, keras.Sequential):
        clone = _sequential_as_functional(model, clone_layer, call, input_tensors)
    else:
        clone = keras.models.clone_model(
            model,
            input_tensors=input_tensors,
            clone_function=clone_layer,
            call_function=call,
            recursive=True,
        )
    for copy_weights in copies:
        copy_weights()
    return clone


def _graph_replacement(old: keras.layers.Layer, decision) -> tuple[keras.layers.Layer, Copy]:
    """The new layer and, when needed, what copies its weights once the clone is built."""
    if isinstance(decision, keras.layers.Layer):
        return decision, None
    decision = decision or KEEP
    source = old.layer if decision.unwrap else old
    copy = fresh_copy(source)
    if decision.built:
        built_like(copy, source)
    new = decision.wrap(copy) if decision.wrap else copy
    if decision.built and decision.weights is None:
        return new, None
    weights = decision.weights or source.get_weights
    return new, lambda: copy.set_weights(weights())


def _sequential_as_functional(model, clone_layer, call, input_tensors) -> keras.Model:
    """The clone of a Sequential model as a functional one, each layer called through `call`.

    (`clone_model` has no `call_function` for Sequential models.)
    """
    first = model.inputs[0]
    if input_tensors is None:
        input_tensors = keras.Input(batch_shape=first.shape, dtype=first.dtype, name=first.name)
    x = input_tensors
    for layer in model.layers:
        if is_graph_model(layer):
            new = keras.models.clone_model(
                layer,
                clone_function=clone_layer,
                call_function=None if isinstance(layer, keras.Sequential) else call,
                recursive=True,
            )
        else:
            new = clone_layer(layer)
        x = call(new, x)
    return keras.Model(input_tensors, x, name=model.name)


def layer_attributes(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The model's public attributes that hold a layer, by attribute name."""
    return {
        name: value
        for name, value in vars(model).items()
        if not name.startswith("_") and isinstance(value, keras.layers.Layer)
    }


def rebuild_subclassed(model: keras.Model, replace: Replace) -> keras.Model:
    """A new instance of a built subclassed `model`, each layer attribute through `replace`.

    The class makes its layers (unbuilt); a `Replacement` may wrap them; the
    new model is built from `model`'s build config; then each layer (the one
    inside a wrapper) receives the weights of the original's layer (the one
    inside a wrapper), of `Replacement.weights`, or of a replacement layer.

    Raises:
        ValueError: The model was never built, or cannot be re-created from its config.
    """
    build_config = model.get_build_config()
    if not model.built or not build_config:
        raise ValueError(f"Subclassed model {model.name!r} must be built (called on data) first.")
    try:
        fresh = _recreate(model)
    except Exception as err:  # any constructor failure means the config is incomplete
        raise ValueError(
            f"Subclassed model {model.name!r} cannot be re-created from its `get_config()` "
            f"({type(err).__name__}: {err}). Give its class a `get_config()` returning its "
            "constructor arguments, or wrap its layers in `__init__` instead (for example "
            "`prune_low_magnitude(layer)`, `cluster_weights(layer)` or `QuantizeWrapper(layer)`)."
        ) from err
    old_layers = layer_attributes(model)
    copies = []
    for name, made in layer_attributes(fresh).items():
        old = old_layers[name]
        new, copy_weights = _subclassed_replacement(made, old, replace(old))
        if new is not made:
            setattr(fresh, name, new)
        if copy_weights is not None:
            copies.append(copy_weights)
    fresh.build_from_config(build_config)
    shape = [1 if d is None else d for d in build_config["input_shape"]]
    fresh(np.zeros(shape, dtype="float32"))  # marks the model built
    for copy_weights in copies:
        copy_weights()
    return fresh


def _recreate(model: keras.Model) -> keras.Model:
    """A new instance of `model`'s class: from its config, or from no arguments.

    A subclassed model written the usual way has no `get_config()` of its own and an
    `__init__` with no required arguments; Keras' default config then holds base arguments
    (`trainable`, `dtype`) that such an `__init__` refuses, so it is called without them.
    """
    cls = model.__class__
    try:
        return cls.from_config(model.get_config())
    except Exception:
        if _required_arguments(cls):
            raise
        return cls()


def _required_arguments(cls: type) -> list[str]:
    """The arguments `cls(...)` cannot do without."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # not self
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in parameters if p.default is p.empty and p.kind not in variadic]


def _subclassed_replacement(made, old, decision) -> tuple[keras.layers.Layer, Copy]:
    """The layer the class `made` for `old`, as `decision` changes it, and its weight copy."""
    if isinstance(decision, keras.layers.Layer):  # its weights go into the class's layer
        return made, lambda: _unwrapped(made).set_weights(decision.get_weights())
    decision = decision or KEEP
    base = _unwrapped(made) if decision.unwrap else made
    if decision.built:
        built_like(base, _unwrapped(old) if decision.unwrap else old)
    new = decision.wrap(base) if decision.wrap else base
    if decision.built and decision.weights is None:
        return new, None
    target = _unwrapped(new)
    weights = decision.weights or _unwrapped(old).get_weights
    return new, lambda: target.set_weights(weights())


def _unwrapped(layer: keras.layers.Layer) -> keras.layers.Layer:
    return layer.layer if isinstance(layer, keras.layers.Wrapper) else layer
