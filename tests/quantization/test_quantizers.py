"""Weight and activation quantizers against the arithmetic TFLite uses."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.quantization import ActivationQuantizer, WeightQuantizer


def _grid(w: np.ndarray, bits: int, axis_max: np.ndarray) -> np.ndarray:
    """Symmetric narrow-range rounding, numpy: q = round(w / s) * s, s = max / (2^(b-1) - 1)."""
    levels = 2 ** (bits - 1) - 1
    scale = axis_max / levels
    return np.clip(np.round(w / scale), -levels, levels) * scale


@pytest.mark.parametrize("bits", [8, 4])
def test_weight_per_tensor_matches_numpy(bits):
    w = np.random.default_rng(0).normal(size=(20, 7)).astype("float32")
    q = WeightQuantizer(bits=bits, per_channel=False)(w).numpy()
    np.testing.assert_allclose(q, _grid(w, bits, np.abs(w).max()), atol=1e-6)
    assert np.unique(q).size <= 2**bits - 1


@pytest.mark.parametrize("bits", [8, 4])
def test_weight_per_channel_matches_numpy(bits):
    w = np.random.default_rng(1).normal(size=(3, 3, 4, 6)).astype("float32")
    w[..., 2] *= 10  # channels of very different ranges
    q = WeightQuantizer(bits=bits)(w).numpy()
    np.testing.assert_allclose(q, _grid(w, bits, np.abs(w).max(axis=(0, 1, 2))), atol=1e-5)


def test_depthwise_channels_span_two_axes():
    w = np.random.default_rng(2).normal(size=(3, 3, 4, 2)).astype("float32")
    q = WeightQuantizer(channel_dims=2)(w).numpy()
    flat = w.reshape(9, 8)
    expected = _grid(flat, 8, np.abs(flat).max(axis=0)).reshape(w.shape)
    np.testing.assert_allclose(q, expected, atol=1e-6)


def test_weight_zero_is_exact_and_pruned_channel_stays_zero():
    w = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")
    w[:, 1] = 0.0
    w[0, 0] = 0.0
    q = WeightQuantizer()(w).numpy()
    assert q[0, 0] == 0.0 and not q[:, 1].any()
    assert np.isfinite(q).all()


def test_straight_through_gradient():
    w = tf.Variable(np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(WeightQuantizer(bits=4)(w) * 3.0)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 3.0)


def _ranges(quantizer):
    layer = keras.layers.Layer()
    return layer, quantizer.build(None, layer, "out")


def test_activation_first_batch_sets_range_then_moving_average():
    q = ActivationQuantizer(ema_decay=0.9)
    _, ranges = _ranges(q)
    q(np.array([[-1.0, 3.0]], "float32"), ranges, training=True)
    assert float(ranges["min"].numpy()) == -1.0 and float(ranges["max"].numpy()) == 3.0
    q(np.array([[0.5, 13.0]], "float32"), ranges, training=True)
    # min: the batch's min is clamped to 0 (ranges contain zero)
    np.testing.assert_allclose(ranges["min"].numpy(), 0.9 * -1.0 + 0.1 * 0.0, rtol=1e-6)
    np.testing.assert_allclose(ranges["max"].numpy(), 0.9 * 3.0 + 0.1 * 13.0, rtol=1e-6)
    before = ranges["max"].numpy()
    q(np.array([[100.0]], "float32"), ranges, training=False)  # inference does not move it
    assert ranges["max"].numpy() == before


def test_activation_rounds_to_asymmetric_grid_and_clips():
    q = ActivationQuantizer()
    _, ranges = _ranges(q)
    ranges["min"].assign(0.0)
    ranges["max"].assign(2.55)
    ranges["initialized"].assign(1.0)
    y = q(np.array([0.004, 0.006, 1.0, 9.0], "float32"), ranges).numpy()
    np.testing.assert_allclose(y, [0.0, 0.01, 1.0, 2.55], atol=1e-6)


def test_learned_range_receives_gradients():
    q = ActivationQuantizer(learned=True)
    layer, ranges = _ranges(q)
    assert {v.name for v in layer.trainable_weights} == {"out_min", "out_max"}
    x = np.linspace(-2, 2, 50, dtype="float32")
    q(x, ranges, training=True)  # first batch: range set from the data
    ranges["max"].assign(1.0)  # now clip the top of the data
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(q(x, ranges, training=True))
    grad = tape.gradient(loss, ranges["max"].value)
    assert grad is not None and float(grad) > 0  # clipped values pull the max up


@pytest.mark.parametrize("bits", [3, 16, 8.0, True])
def test_weight_bits_outside_the_supported_set(bits):
    with pytest.raises(ValueError, match=r"`bits` must be one of \(4, 8\).*bits="):
        WeightQuantizer(bits=bits)


def test_activation_bits_and_decay_errors():
    with pytest.raises(ValueError, match="bits=4"):
        ActivationQuantizer(bits=4)
    with pytest.raises(ValueError, match="ema_decay=1.0"):
        ActivationQuantizer(ema_decay=1.0)


def test_quantizers_serialize():
    for q in (WeightQuantizer(4, False), ActivationQuantizer(ema_decay=0.5, learned=True)):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(q))
        assert again == q and again is not q
