"""Names in `skip=` and `layer_sparsity=` that match no layer raise, listing the layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress as tc


def _mlp():
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, name="fc"), keras.layers.Dense(3, name="out")],
        name="mlp",
    )


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"skip": ["fc", "logits"]}, "skip"),
        ({"skip": [keras.layers.Dense, "logit"]}, "skip"),
        ({"layer_sparsity": {"fc1": 0.5}}, "layer_sparsity"),
    ],
)
def test_unknown_layer_names_raise_listing_the_layers(kwargs, argument):
    with pytest.raises(
        ValueError,
        match=rf"No layer named '\w+' in model 'mlp': every name in `{argument}` must be one "
        r"of its layers. Its layers: 'fc', 'out'",
    ):
        tc.prune_low_magnitude(_mlp(), **kwargs)


def test_class_entries_and_known_names_are_accepted():
    pruned = tc.prune_low_magnitude(
        _mlp(), skip=[keras.layers.Dense], layer_sparsity={"fc": 0.5, "out": 0.25}
    )
    assert tc.pruning.update_pruning_step.collect_wrappers(pruned) == []


def test_a_long_layer_list_is_truncated():
    layers = [keras.Input((2,))] + [keras.layers.Dense(2, name=f"d{i:03d}") for i in range(60)]
    with pytest.raises(ValueError, match=r"'d039', \.\.\. \(20 more\)$"):
        tc.prune_low_magnitude(keras.Sequential(layers, name="deep"), skip=["nope"])


def test_forgetting_the_step_callback_then_adding_it_trains():
    """The missing-callback error comes from the graph assert, after a complete trace.

    (Raising from Python while the step is traced would put the hint on top, but leaves Keras'
    cached train function half-traced: the next `fit`, with the callback, then fails with
    "Creating variables on a non-first call".)
    """
    pruned = tc.prune_low_magnitude(_mlp())
    pruned.compile("sgd", "mse")
    x, y = np.zeros((8, 4)), np.zeros((8, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="UpdatePruningStep"):
        pruned.fit(x, y, verbose=0)
    history = pruned.fit(x, y, verbose=0, callbacks=[tc.UpdatePruningStep()])
    assert np.isfinite(history.history["loss"]).all()
