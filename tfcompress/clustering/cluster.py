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
from tfcompress.utils.surgery import (
    Replacement,
    built_copy,
    collect,
    transform,
    transform_model,
)


def collect_cluster_wrappers(layer: keras.layers.Layer) -> list[ClusterWeights]:
    """Every clustering wrapper inside `layer` (models and wrappers nested at any depth)."""
    return collect(layer, ClusterWeights)


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
    attributes wrapped (see `tfcompress.utils.surgery`); its class needs a
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
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")])
        >>> clustered = tfcompress.cluster_weights(model, number_of_clusters=16, skip=["logits"])
        >>> clustered.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = clustered.fit(data.x_train[:64], data.y_train[:64], epochs=1, verbose=0)
        >>> final = tfcompress.strip_clustering(clustered)
        >>> len(np.unique(final.get_layer("fc1").kernel.numpy())) <= 16
        True
    """
    check_number_of_clusters(number_of_clusters)
    options = {
        "number_of_clusters": number_of_clusters,
        "cluster_centroids_init": centroid_initialization(cluster_centroids_init),
        "preserve_sparsity": preserve_sparsity,
        "cluster_per_channel": cluster_per_channel,
    }
    skip = list(skip)

    def in_model(model: keras.Model):
        if collect_cluster_wrappers(model):
            raise ValueError(
                f"Model {model.name!r} already contains clustering wrappers; call "
                "`strip_clustering` first to cluster it again."
            )
        return replace

    def replace(layer: keras.layers.Layer) -> Replacement | None:
        if _skipped(layer, skip) or not clusterable_weights(layer):
            return None
        # Built with the trained weights first: the centroids start from them.
        return Replacement(wrap=lambda inner: ClusterWeights(inner, **options), built=True)

    def wrap_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer if _skipped(layer, skip) else ClusterWeights(layer, **options)

    return transform(to_cluster, in_model, wrap_layer, "cluster_weights", "to_cluster")


def strip_clustering(model: keras.Model | ClusterWeights):
    """Removes clustering wrappers: a plain Keras model (or layer) holding the clustered values.

    Each clustered weight of the result is `centroids[indices]`: at most k
    distinct values (per channel for per-channel clustering). Sequential and
    functional models are cloned; subclassed models are re-created from their
    config with plain layers. The clustered model is left untouched.

    Example:
        >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, name="fc1")])
        >>> clustered = tfcompress.cluster_weights(model, number_of_clusters=8)
        >>> plain = tfcompress.strip_clustering(clustered)
        >>> [type(layer).__name__ for layer in plain.layers]
        ['Dense']
        >>> content = tfcompress.export_tflite(plain, "clustered.tflite")
        >>> len(np.unique(plain.get_layer("fc1").kernel.numpy())) <= 8
        True
    """
    if isinstance(model, ClusterWeights):
        if not model.built:
            raise ValueError(f"Layer {model.name!r} was never built; call it on data first.")
        plain = built_copy(model.layer)
        plain.set_weights(model.stripped_weights())
        return plain
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a keras.Model or a ClusterWeights layer. "
            f"Received: type {type(model).__name__}"
        )
    return transform_model(model, _unclustered)


def _unclustered(layer: keras.layers.Layer) -> Replacement | None:
    """A clustering wrapper gives way to (a copy of) the layer inside, holding the clustered
    values."""
    if not isinstance(layer, ClusterWeights):
        return None
    return Replacement(unwrap=True, weights=layer.stripped_weights)
