"""`prune_low_magnitude` keeping `input_shape=`, and `prune_scope`."""

from __future__ import annotations

import contextlib

import keras

from tfcompress import pruning
from tfcompress.compat.tfmot.input_shape import keep_input_shape


def prune_low_magnitude(
    to_prune: keras.layers.Layer | list | keras.Model,
    pruning_schedule: pruning.PruningSchedule | None = None,
    **kwargs,
):
    """`tfcompress.prune_low_magnitude`; a wrapped layer keeps its `input_shape=`.

    Takes tfmot's `pruning_schedule`, `block_size`, `block_pooling_type` and
    `sparsity_m_by_n` (and tfcompress's own options). `pruning_policy` is not
    supported.
    """
    pruned = pruning.prune_low_magnitude(to_prune, pruning_schedule, **kwargs)
    return keep_input_shape(to_prune, pruned)


@contextlib.contextmanager
def prune_scope():
    """Makes the pruning classes known while loading a model, as tfmot's scope does.

    They are registered as serializable, so `.keras` files load without it.
    """
    objects = {
        cls.__name__: cls
        for cls in (pruning.PruneLowMagnitude, pruning.ConstantSparsity, pruning.PolynomialDecay)
    }
    with keras.saving.custom_object_scope(objects):
        yield
