"""Entry points: `cluster_weights` and `strip_clustering`."""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tfcompress.clustering.centroids import CentroidInitialization
from tfcompress.clustering.cluster_weights_wrapper import (
    ClusterWeights,
    centroid_initialization,
    check_number_of_clusters,
)
from tfcompress.clustering.clusterable import clusterable_weights
from tfcompress.pruning.subclassed import layer_attributes, rebuild_subclassed
from tfcompress.utils.cloning import (
    built_like,
    clone_graph,
    copy_into,
    fresh_copy,
    is_graph_model,
    leaf_layers,
)


def collect_cluster_wrappers(layer: keras.layers.Layer) -> list[ClusterWeights]:
    """Every clustering wrapper inside `layer` (models and wrappers nested at any depth)."""
    leaves = leaf_layers(layer, (ClusterWeights,))
    return [leaf for leaf in leaves if isinstance(leaf, ClusterWeights)]


def _skipped(layer: keras.layers.Layer, skip: list) -> bool:
    return layer.name in skip or any(isinstance(s, type) and isinstance(layer, s) for s in skip)


def cluster_weights(
    to_cluster: keras.layers.Layer | list | keras.Model,
    number_of_clusters: int,
    cluster_centroids_init: CentroidInitialization | str = CentroidInitialization.KMEANS_PLUS_PLUS,
    preserve_sparsity: bool = False,
    cluster_per_channel: bool | None = None,
    skip: Iterable[str | type] = (),
):
    """Wraps a layer, a list of layers, or a whole model for weight clustering.

    Same name and arguments as `tfmot.clustering.keras.cluster_weights`
    (`preserve_sparsity` and `cluster_per_channel` as in its experimental
    version). Each clusterable weight (kernels, embeddings; never biases) is
    shared among `number_of_clusters` trainable centroids, per tensor or per
    output channel (see `ClusterWeights`), initialised from the current
    weights: cluster a trained model, fine-tune it briefly (no callback
    needed), then call `strip_clustering` for a plain Keras model whose
    clustered weights hold at most k distinct values (per channel, for
    per-channel clustering).

    Models: Sequential and functional models (nested ones included) are
    cloned with every supported layer wrapped and the weights copied. A built
    subclassed model is re-created from its `get_config()` with its layer
    attributes wrapped (see `tfcompress.pruning.subclassed`); its class needs a
    working `get_config()`, otherwise wrap its layers with
    `cluster_weights(layer, ...)` in `__init__`. The original model is left
    untouched. Layers with nothing to cluster (BatchNormalization, pooling,
    Add, ...) pass through.

    Args:
        to_cluster: A layer, a list of layers, or a model.
        number_of_clusters: k, centroids per weight (or per channel); at least 2.
        cluster_centroids_init: A `CentroidInitialization` or one of
            `"linear"`, `"kmeans++"`, `"density"`.
        preserve_sparsity: Zero weights stay exactly zero (for pruned models).
        cluster_per_channel: True / False, or None (auto: per channel for
            convolution kernels, per tensor for Dense and Embedding).
        skip: Layer names or classes that are not clustered.

    Returns:
        The wrapped layer, list of wrapped layers, or clustered model.

    Raises:
        ValueError: `number_of_clusters` below 2 or above a layer's number of
            weights (per channel for per-channel clustering), an unknown
            `cluster_centroids_init`, an already clustered model or layer, or
            an unsupported layer given explicitly.

    Example:
        >>> clustered = cluster_weights(model, number_of_clusters=16, skip=["logits"])
        >>> clustered.compile(...)
        >>> clustered.fit(x, y, epochs=1)
        >>> final = strip_clustering(clustered)
    """
    check_number_of_clusters(number_of_clusters)
    options = {
        "number_of_clusters": number_of_clusters,
        "cluster_centroids_init": centroid_initialization(cluster_centroids_init),
        "preserve_sparsity": preserve_sparsity,
        "cluster_per_channel": cluster_per_channel,
    }
    skip = list(skip)

    def wanted(layer) -> bool:
        return not _skipped(layer, skip) and bool(clusterable_weights(layer))

    if isinstance(to_cluster, keras.Model):
        if not to_cluster.built:
            raise ValueError(
                f"cluster_weights: model {to_cluster.name!r} was never built; build it (or "
                "define it with `keras.Input`) first."
            )
        if collect_cluster_wrappers(to_cluster):
            raise ValueError(
                f"Model {to_cluster.name!r} already contains clustering wrappers; call "
                "`strip_clustering` first to cluster it again."
            )
        if not is_graph_model(to_cluster):

            def swap(fresh, old):
                if not wanted(old):
                    return fresh
                return ClusterWeights(built_like(fresh, old), **options)

            return rebuild_subclassed(to_cluster, swap)

        def replace(layer):  # nested models are recursed into, never passed here
            new = fresh_copy(layer)
            if not wanted(layer):
                return new, copy_into(layer, new)
            wrapper = ClusterWeights(built_like(new, layer), **options)
            return wrapper, lambda: None

        return clone_graph(to_cluster, replace)
    if isinstance(to_cluster, (list, tuple)):
        return [cluster_weights(layer, **options, skip=skip) for layer in to_cluster]
    if isinstance(to_cluster, keras.layers.Layer):
        return to_cluster if _skipped(to_cluster, skip) else ClusterWeights(to_cluster, **options)
    raise TypeError(
        "`to_cluster` must be a keras.layers.Layer, a list of layers or a keras.Model. "
        f"Received: type {type(to_cluster).__name__}"
    )


def strip_clustering(model: keras.Model | ClusterWeights):
    """Removes clustering wrappers: a plain Keras model (or layer) holding the clustered values.

    Each clustered weight of the result is `centroids[indices]`: at most k
    distinct values (per channel for per-channel clustering). Sequential and
    functional models are cloned; subclassed models are re-created from their
    config with plain layers. The clustered model is left untouched.

    Example:
        >>> plain = strip_clustering(clustered)
        >>> tfcompress.export_tflite(plain, "clustered.tflite")
    """
    if isinstance(model, ClusterWeights):
        if not model.built:
            raise ValueError(f"Layer {model.name!r} was never built; call it on data first.")
        plain = built_like(fresh_copy(model.layer), model.layer)
        plain.set_weights(model.stripped_weights())
        return plain
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a keras.Model or a ClusterWeights layer. "
            f"Received: type {type(model).__name__}"
        )
    if not is_graph_model(model):
        plain = rebuild_subclassed(
            model, lambda fresh, old: fresh.layer if isinstance(fresh, ClusterWeights) else fresh
        )
        for name, old in layer_attributes(model).items():
            if isinstance(old, ClusterWeights):
                getattr(plain, name).set_weights(old.stripped_weights())
        return plain

    def replace(layer):
        if not isinstance(layer, ClusterWeights):
            new = fresh_copy(layer)
            return new, copy_into(layer, new)
        new = fresh_copy(layer.layer)
        return new, lambda: new.set_weights(layer.stripped_weights())

    return clone_graph(model, replace)
