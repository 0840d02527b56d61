"""Weight clustering for Keras 3 (Deep Compression-style weight sharing): each clustered
weight takes at most k values, its trainable centroids, per tensor or per output channel."""

from tfcompress.clustering.centroids import CentroidInitialization
from tfcompress.clustering.cluster import cluster_weights, strip_clustering
from tfcompress.clustering.cluster_weights_wrapper import ClusterWeights
from tfcompress.clustering.clusterable import ClusterableLayer, register_clusterable

__all__ = [
    "CentroidInitialization",
    "ClusterWeights",
    "ClusterableLayer",
    "cluster_weights",
    "register_clusterable",
    "strip_clustering",
]
