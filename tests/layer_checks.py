"""`run_layer_test`: the checks every tfcompress layer and wrapper passes, in one call."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Sequence

import keras
import numpy as np


def _numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


def _in_model(layer: keras.layers.Layer, input_shape: tuple[int, ...]) -> keras.Model:
    inputs = keras.Input(input_shape[1:], name="x")
    return keras.Model(inputs, layer(inputs), name="model")


def _check_config_round_trip(layer: keras.layers.Layer) -> None:
    config = layer.get_config()
    # keras.layers.Wrapper.from_config pops "layer" from the dict it is given: pass a copy.
    assert type(layer).from_config(copy.deepcopy(config)).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == config


def _check_training_step(model, x, y, callbacks) -> None:
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [_numpy(w) for w in model.weights]
    history = model.fit(x, y, batch_size=len(x), epochs=1, callbacks=list(callbacks), verbose=0)
    assert np.isfinite(history.history["loss"][-1]), history.history
    changed = {
        w.path for w, old in zip(model.weights, before) if not np.array_equal(_numpy(w), old)
    }
    trainable = {w.path for w in model.trainable_weights}
    if trainable:
        assert changed & trainable, f"no trainable weight changed: {sorted(trainable)}"
    else:  # a layer with state only (a quantization range): the step updates it
        assert changed, f"no weight changed: {[w.path for w in model.weights]}"


def _check_keras_round_trip(model: keras.Model, x: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)  # registered classes: no custom_objects
    assert type(reloaded.layers[-1]) is type(model.layers[-1])
    for saved, loaded in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(_numpy(loaded), _numpy(saved), err_msg=saved.path)
    np.testing.assert_allclose(
        _numpy(reloaded(x, training=False)), _numpy(model(x, training=False)), rtol=0, atol=1e-6
    )


def _check_mixed_precision(make_layer, input_shape, x, expected_output_shape) -> None:
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = make_layer()
        output = _in_model(layer, input_shape)(x, training=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert keras.backend.standardize_dtype(output.dtype) == "float16", output.dtype
    assert tuple(output.shape) == expected_output_shape
    assert np.isfinite(_numpy(output)).all()
    floats = [w for w in layer.trainable_weights if "float" in w.dtype]
    assert all(w.dtype == "float32" for w in floats), [(w.path, w.dtype) for w in floats]


def run_layer_test(
    make_layer: Callable[[], keras.layers.Layer],
    input_shape: tuple[int, ...],
    expected_output_shape: tuple[int, ...],
    *,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    run_training_check: bool = True,
    run_mixed_precision_check: bool = True,
    seed: int = 0,
) -> keras.Model:
    """Builds the layer from `make_layer()` and checks what every Keras layer should do.

    Checks, in order: `build(input_shape)` and the weight counts; the output
    shape eagerly and in a functional model (batch dimension `None`); the
    `get_config`/`from_config` and `serialize`/`deserialize` round trips; one
    `fit` step on random data (finite loss, some trainable weight changes, or
    some state when the layer has no trainable weight); the `.keras` round trip
    of the trained model (same weights, same outputs); and, with a fresh layer
    made under the global `mixed_float16` policy, a float16 output of the same
    shape with float32 trainable variables. The global policy is restored.

    Args:
        make_layer: Returns a fresh, unbuilt layer (called twice: the mixed
            precision check needs a layer created under that policy).
        input_shape: Input shape, batch included.
        expected_output_shape: Output shape, batch included.
        expected_num_trainable_weights: Checked after `build` when given.
        expected_num_non_trainable_weights: Checked after `build` when given.
        callbacks: `fit` callbacks the layer needs (`UpdatePruningStep`).
        run_training_check: False for a layer that cannot train.
        run_mixed_precision_check: False for a layer without mixed precision.
        seed: Seed of the random inputs, targets and initial weights.

    Returns:
        The trained functional model holding the layer, for further checks.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=input_shape).astype("float32")
    keras.utils.set_random_seed(seed)
    layer = make_layer()
    layer.build(input_shape)
    assert layer.built
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, [
            w.path for w in layer.trainable_weights
        ]
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, [
            w.path for w in layer.non_trainable_weights
        ]
    assert tuple(layer(x).shape) == expected_output_shape
    model = _in_model(layer, input_shape)
    assert tuple(model.output.shape) == (None, *expected_output_shape[1:])
    _check_config_round_trip(layer)
    if run_training_check:
        y = rng.normal(size=expected_output_shape).astype("float32")
        _check_training_step(model, x, y, callbacks)
    _check_keras_round_trip(model, x)
    if run_mixed_precision_check:
        _check_mixed_precision(make_layer, input_shape, x, expected_output_shape)
    return model
