"""Functional models written with operator syntax (`x + y`, `keras.ops` calls) go through surgery.

Those calls become Keras Operations, not Layers: they hold no weights, and every technique's
clone must keep them as they are (MobileNetV3 and EfficientNet are written this way).
"""

import keras
import numpy as np
import pytest

import tfcompress as tc


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(16, 3, padding="same", name="c1")(image)
    b = keras.layers.Conv2D(16, 3, padding="same", name="c2")(image)
    x = a + b
    x = x * keras.ops.sigmoid(x)  # hard-swish style, as in MobileNetV3
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(10, name="fc")(x))


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize(
    ("apply", "strip"),
    [
        (tc.prune_low_magnitude, tc.strip_pruning),
        (lambda m: tc.cluster_weights(m, 64), tc.strip_clustering),
        (lambda m: tc.factorize(m, rank=4), None),
    ],
    ids=["prune", "cluster", "factorize"],
)
def test_each_technique_keeps_the_operations(model, x, apply, strip, reload):
    changed = apply(model)
    expected = model(x).numpy()
    if strip is None:  # factorized: low rank, same graph around it
        assert type(changed.get_layer("fc")).__name__ == "FactorizedDense"
        assert changed(x).shape == expected.shape and np.isfinite(changed(x)).all()
        return
    plain = strip(changed)
    assert [layer.name for layer in plain.layers[1:]] == [layer.name for layer in model.layers[1:]]
    np.testing.assert_allclose(reload(plain)(x), plain(x), atol=1e-6)
    assert np.isfinite(plain(x).numpy()).all()


def test_unpruned_wrappers_compute_the_same_model(model, x):
    np.testing.assert_array_equal(tc.prune_low_magnitude(model)(x), model(x))


def test_qat_trains_exports_and_strips(model, x):
    qat = tc.quantize_model(model)
    qat.compile("adam", "mse")
    qat.fit(x, model(x).numpy(), epochs=1, verbose=0)
    runner = tc.TFLiteModel(tc.export_tflite(qat, mode="int8"))
    np.testing.assert_allclose(runner.predict(x), qat.predict(x, verbose=0), atol=0.05)
    plain = tc.strip_quantization(qat)
    assert not tc.quantization.is_quantized(plain)
    np.testing.assert_allclose(plain(x), qat(x), atol=0.1)
