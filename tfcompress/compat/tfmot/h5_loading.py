"""`load_model`: a tf_keras `.h5` model saved by tfmot, in tfcompress's wrappers."""

from __future__ import annotations

import inspect
import json

import keras
import numpy as np

from tfcompress import clustering, pruning, quantization
from tfcompress.compat.tfmot.h5_config import (
    CLUSTER,
    CLUSTERING_WAY_OUT,
    PRUNE,
    QUANTIZE,
    UnwrappedConfig,
    Wrapped,
    unwrap_config,
)
from tfcompress.compat.tfmot.h5_file import SavedArray, read_h5
from tfcompress.utils.surgery import Replacement, transform_model


def load_model(filepath, custom_objects: dict | None = None) -> keras.Model:
    """Loads a tf_keras `.h5` model saved by tfmot into tfcompress's wrappers.

    `model.save("m.h5")` of a model from tfmot's `prune_low_magnitude`,
    `cluster_weights`, `quantize_model` / `quantize_apply` or
    `quantize_annotate_model` loads as the same model built with tfcompress's
    `PruneLowMagnitude`, `ClusterWeights`, `QuantizeWrapper` / `QuantizeLayer`
    or `QuantizeAnnotate`, keeping the weights and the wrappers' state:

    - pruning: each mask, threshold and the step (so training goes on with
      `UpdatePruningStep` where tfmot stopped), and the schedule, block size
      and pooling;
    - clustering: the centroids and each weight's centroid index;
    - QAT: the input and output ranges tfmot learned. Weight ranges are not
      stored by tfcompress, which takes them from the weights themselves (as
      tfmot does while training), so outputs agree up to the last training
      step's change of each weight's range.

    A plain tf_keras `.h5` model (no tfmot wrappers) loads too. The result is
    a Keras 3 model; `strip_pruning`, `strip_clustering`,
    `strip_quantization` and `export_tflite` take it as any tfcompress model.

    Args:
        filepath: Path (or binary file object) of the `.h5` file.
        custom_objects: Classes of custom layers in the model, by name.

    Raises:
        ValueError: A wrapper or configuration tfcompress does not load (tfmot
            wrappers nested, a custom tfmot `QuantizeConfig` or quantizer, a
            pruning policy): the message names the layer and says how to save
            the model plain in tfmot to load it here.

    Example:
        >>> import tfcompress.compat.tfmot as tfmot
        >>> plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc")])
        >>> plain.save("plain.h5")  # a `.h5` from tfmot's wrappers loads the same way
        >>> model = tfmot.load_model("plain.h5")
        >>> pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
        >>> [type(layer).__name__ for layer in pruned.layers]
        ['PruneLowMagnitude']
    """
    config, arrays = read_h5(filepath)
    plan = unwrap_config(config)
    plain = _plain_model(plan.config, custom_objects)
    for layer in plain.layers:
        saved = arrays.get(plan.groups.get(layer.name, layer.name), [])
        _assign(layer, [a for a in saved if not a.of_wrapper or layer.name not in plan.wrapped])
    families = {_family(w.kind) for w in plan.wrapped.values() if _wraps_state(w, arrays)}
    if len(families) > 1:
        raise ValueError(
            f"The model mixes tfmot wrappers for {sorted(families)}; tfcompress loads one kind "
            "at a time. Strip all but one in tfmot, save the model and load it here."
        )
    if any(w.kind in QUANTIZE for w in plan.wrapped.values()):
        return _quantized(plain, plan, arrays)
    model = transform_model(plain, lambda layer: _replacement(layer, plan, arrays))
    for layer in model.layers:
        if isinstance(layer, pruning.PruneLowMagnitude):
            _restore_pruning(layer, arrays[plan.wrapped[layer.layer.name].name])
        elif isinstance(layer, clustering.ClusterWeights):
            _restore_clusters(layer, arrays[plan.wrapped[layer.layer.name].name])
    return model


def _plain_model(config: dict, custom_objects: dict | None) -> keras.Model:
    """The Keras 3 model of a plain tf_keras config (class names looked up in keras.layers)."""
    objects = {n: c for n, c in vars(keras.layers).items() if inspect.isclass(c)}
    objects.update(Sequential=keras.Sequential, Functional=keras.Model, Model=keras.Model)
    objects.update(custom_objects or {})
    try:
        return keras.models.model_from_json(json.dumps(config), custom_objects=objects)
    except TypeError as err:
        raise ValueError(
            f"The model saved by tfmot could not be rebuilt in Keras 3 ({err}); pass the "
            "classes of its custom layers as `custom_objects`."
        ) from err


def _assign(layer: keras.layers.Layer, saved: list[SavedArray]) -> None:
    """Gives each of `layer`'s variables the saved array of the same name."""
    by_name = {a.name: a.value for a in saved}
    if isinstance(layer, keras.Model) or len(by_name) < len(saved):
        raise ValueError(
            f"Layer {layer.name!r}: tfcompress loads tfmot models whose layers are not models "
            "themselves (a nested model's weights share names). Save the model with its inner "
            "model's layers inlined, or load it in tfmot and save it plain."
        )
    missing = [w.name for w in layer.weights if w.name not in by_name]
    if missing:
        raise ValueError(
            f"Layer {layer.name!r}: the file has no saved values for {missing}; it has "
            f"{sorted(by_name)}."
        )
    for weight in layer.weights:
        weight.assign(by_name[weight.name].astype(weight.dtype))


def _wrapper_arrays(saved: list[SavedArray], prefix: str) -> list[np.ndarray]:
    """The wrapper's arrays named `prefix`, `prefix_1`, ... in saved order."""
    return [
        a.value
        for a in saved
        if a.of_wrapper and (a.name == prefix or a.name.startswith(f"{prefix}_"))
    ]


def _family(kind: str) -> str:
    return {PRUNE: "pruning", CLUSTER: "clustering"}.get(kind, "quantization")


def _wraps_state(wrapped: Wrapped, arrays: dict) -> bool:
    """False for a pruning or clustering wrapper around a layer with nothing to prune or
    cluster (tfmot wraps Flatten or MaxPooling2D too)."""
    saved = arrays[wrapped.name]
    if wrapped.kind == PRUNE:
        return bool(_wrapper_arrays(saved, "mask"))
    if wrapped.kind == CLUSTER:
        return any(a.of_wrapper and a.name.startswith("cluster_centroids") for a in saved)
    return True


def _schedule(config: dict) -> pruning.PruningSchedule:
    cls = {"ConstantSparsity": pruning.ConstantSparsity, "PolynomialDecay": pruning.PolynomialDecay}
    return cls[config["class_name"]](**config["config"])


def _replacement(layer: keras.layers.Layer, plan: UnwrappedConfig, arrays: dict):
    wrapped = plan.wrapped.get(layer.name)
    if wrapped is None or not _wraps_state(wrapped, arrays):
        return None
    args = dict(wrapped.arguments)
    if wrapped.kind == PRUNE:
        args["pruning_schedule"] = _schedule(args["pruning_schedule"])
        return Replacement(
            wrap=lambda copy: pruning.PruneLowMagnitude(copy, name=wrapped.name, **args)
        )
    if wrapped.kind == CLUSTER:
        try:
            args["cluster_centroids_init"] = clustering.CentroidInitialization[
                args["cluster_centroids_init"]
            ]
        except KeyError:
            raise ValueError(
                f"Layer {wrapped.name!r}: tfcompress has no centroid initialization "
                f"{args['cluster_centroids_init']!r}; it has "
                f"{[c.name for c in clustering.CentroidInitialization]}."
            ) from None
        return Replacement(
            wrap=lambda copy: clustering.ClusterWeights(copy, name=wrapped.name, **args),
            built=True,
        )
    return Replacement(wrap=lambda copy: quantization.QuantizeAnnotate(copy, name=wrapped.name))


def _restore_pruning(layer: pruning.PruneLowMagnitude, saved: list[SavedArray]) -> None:
    masks = _wrapper_arrays(saved, "mask")
    thresholds = _wrapper_arrays(saved, "threshold")
    if len(masks) != len(layer.masks):
        raise ValueError(
            f"Layer {layer.name!r}: tfmot saved {len(masks)} masks, tfcompress prunes "
            f"{len(layer.masks)} weights of {type(layer.layer).__name__}."
        )
    for variable, value in zip(layer.masks, masks):
        variable.assign(value)
    for variable, value in zip(layer.thresholds, thresholds):
        variable.assign(value)
    layer.pruning_step.assign(int(_wrapper_arrays(saved, "pruning_step")[0]))
    layer.apply_masks()


def _restore_clusters(layer: clustering.ClusterWeights, saved: list[SavedArray]) -> None:
    """tfmot's centroids, and each weight's nearest centroid as its index.

    tfmot re-assigns every weight to its nearest centroid on each call, in
    inference too; the indices it saved are those of the call before the last
    update, so they are recomputed here from the saved weights.
    """
    centroids = [a.value for a in saved if a.of_wrapper and a.name.startswith("cluster_centroids")]
    shapes = [tuple(c.shape) for c in layer.centroids]
    if [c.shape for c in centroids] != shapes:
        raise ValueError(
            f"Layer {layer.name!r}: tfmot saved centroid tables of shapes "
            f"{[c.shape for c in centroids]}; tfcompress loads one table per clustered weight "
            f"(shapes {shapes}). {CLUSTERING_WAY_OUT}"
        )
    for variable, indices, value, weight in zip(
        layer.centroids, layer.indices, centroids, layer.clustered_variables
    ):
        variable.assign(value)
        nearest = np.abs(keras.ops.convert_to_numpy(weight)[..., None] - value).argmin(axis=-1)
        indices.assign(nearest.astype("int32"))


def _quantized(plain: keras.Model, plan: UnwrappedConfig, arrays: dict) -> keras.Model:
    """tfcompress's QAT model of `plain`, quantizing the layers tfmot did, with its ranges."""
    annotated = transform_model(plain, lambda layer: _replacement(layer, plan, arrays))
    model = quantization.quantize_apply(annotated)
    wrappers = {
        layer.layer.name: layer
        for layer in model.layers
        if isinstance(layer, quantization.QuantizeWrapper)
    }
    for name, wrapped in plan.wrapped.items():
        if name in wrappers:
            _restore_ranges(wrappers[name], arrays[wrapped.name])
    inputs = [layer for layer in model.layers if isinstance(layer, quantization.QuantizeLayer)]
    for layer, name in zip(inputs, plan.input_quantizers):
        _set_range(layer.ranges, arrays[name], f"{name}_min", f"{name}_max")
    return model


def _restore_ranges(wrapper: quantization.QuantizeWrapper, saved: list[SavedArray]) -> None:
    if wrapper.pre_activation_ranges is not None:
        _set_range(wrapper.pre_activation_ranges, saved, "pre_activation_min", "pre_activation_max")
    if wrapper.output_ranges is not None:
        names = {a.name for a in saved}
        lo, hi = (
            ("post_activation_min", "post_activation_max")
            if "post_activation_min" in names
            else ("output_min", "output_max")
        )
        _set_range(wrapper.output_ranges, saved, lo, hi)


def _set_range(ranges: dict, saved: list[SavedArray], lo: str, hi: str) -> None:
    """Sets a tfcompress range from tfmot's saved min and max (when tfmot saved them)."""
    by_name = {a.name: a.value for a in saved}
    if lo in by_name and hi in by_name:
        ranges["min"].assign(float(by_name[lo]))
        ranges["max"].assign(float(by_name[hi]))
        ranges["initialized"].assign(1.0)
