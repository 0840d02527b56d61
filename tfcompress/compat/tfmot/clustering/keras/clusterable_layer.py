"""`ClusterableLayer` taking tfmot's `(name, weight)` pairs."""

from __future__ import annotations

import functools

from tfcompress import clustering


class ClusterableLayer(clustering.ClusterableLayer):
    """tfmot's mixin: `get_clusterable_weights` returns `[(name, weight), ...]`.

    tfcompress's mixin takes the weights alone; the names are dropped when a
    subclass is defined, so `MyDense(keras.layers.Dense, ClusterableLayer)`
    returning `[("kernel", self.kernel)]` clusters its kernel.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        named = cls.__dict__.get("get_clusterable_weights")
        if named is not None:
            cls.get_clusterable_weights = _unnamed(named)


def _unnamed(get_weights):
    @functools.wraps(get_weights)
    def get_clusterable_weights(self) -> list:
        return [w[1] if isinstance(w, tuple) else w for w in get_weights(self)]

    return get_clusterable_weights
