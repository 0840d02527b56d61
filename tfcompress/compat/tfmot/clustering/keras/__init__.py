"""`tfmot.clustering.keras` on tfcompress's clustering."""

from tfcompress.clustering import CentroidInitialization, strip_clustering
from tfcompress.compat.tfmot.clustering.keras.cluster import cluster_scope, cluster_weights
from tfcompress.compat.tfmot.clustering.keras.clusterable_layer import ClusterableLayer

__all__ = [
    "CentroidInitialization",
    "ClusterableLayer",
    "cluster_scope",
    "cluster_weights",
    "strip_clustering",
]
