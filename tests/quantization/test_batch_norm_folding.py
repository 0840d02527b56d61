"""`BatchNormFolding` on its own: the folded kernel scale and bias, and the training terms."""

import keras
import numpy as np
import pytest

from tfcompress.quantization.batch_norm_folding import BatchNormFolding

RNG = np.random.default_rng(0)


def _bn(channels, input_shape, **kwargs):
    bn = keras.layers.BatchNormalization(**kwargs)
    bn.build(input_shape)
    values = {
        "gamma": RNG.uniform(0.5, 2, channels),
        "beta": RNG.normal(size=channels),
        "moving_mean": RNG.normal(size=channels),
        "moving_variance": RNG.uniform(0.5, 3, channels),
    }
    for weight in bn.weights:
        weight.assign(values[weight.name])
    return bn


def _conv(use_bias=True):
    conv = keras.layers.Conv2D(4, 3, use_bias=use_bias, bias_initializer="random_normal")
    conv.build((None, 6, 6, 2))
    return conv


def test_scale_and_folded_bias_are_the_textbook_formulas():
    conv, bn = _conv(), _bn(4, (None, 4, 4, 4))
    folding = BatchNormFolding(conv, bn)
    gamma, beta, mean, var = (w.numpy() for w in bn.weights)
    scale = gamma / np.sqrt(var + bn.epsilon)
    np.testing.assert_allclose(folding.scale().numpy(), scale, rtol=1e-6)
    expected = (conv.bias.numpy() - mean) * scale + beta
    np.testing.assert_allclose(folding.folded_bias().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_folded_layer_equals_layer_then_batch_norm_in_inference():
    conv, bn = _conv(), _bn(4, (None, 4, 4, 4))
    x = RNG.normal(size=(3, 6, 6, 2)).astype("float32")
    folding = BatchNormFolding(conv, bn)
    kernel = conv.kernel.numpy() * folding.kernel_scale(conv.kernel).numpy()
    folded = keras.ops.conv(x, kernel).numpy() + folding.folded_bias().numpy()
    np.testing.assert_allclose(folded, bn(conv(x), training=False).numpy(), atol=1e-5)


@pytest.mark.parametrize("center, scale", [(False, False), (True, False), (False, True)])
def test_missing_gamma_beta_or_bias_count_as_one_or_zero(center, scale):
    conv, bn = _conv(use_bias=False), _bn(4, (None, 4, 4, 4), center=center, scale=scale)
    values = {w.name: w.numpy() for w in bn.weights}
    gamma = values.get("gamma", 1.0)
    inv = 1 / np.sqrt(values["moving_variance"] + bn.epsilon)
    expected = -values["moving_mean"] * gamma * inv + values.get("beta", 0.0)
    np.testing.assert_allclose(
        BatchNormFolding(conv, bn).folded_bias().numpy(), expected, rtol=1e-5, atol=1e-6
    )


def test_depthwise_scale_has_the_kernels_in_multiplier_shape():
    dw = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    dw.build((None, 6, 6, 3))
    folding = BatchNormFolding(dw, _bn(6, (None, 4, 4, 6)))
    scale = folding.kernel_scale(dw.kernel)
    assert tuple(scale.shape) == (3, 2)  # TFLite's channel c * 2 + m is [c, m] of the kernel
    np.testing.assert_array_equal(scale.numpy().reshape(-1), folding.scale().numpy())


@pytest.mark.parametrize("rank", [1, 2])
def test_transposed_conv_scale_is_on_the_kernels_output_axis(rank):
    """A transposed convolution's kernel is `[..., out, in]`: folding scales axis -2."""
    transpose = keras.layers.Conv1DTranspose if rank == 1 else keras.layers.Conv2DTranspose
    layer = transpose(4, 3, strides=2, bias_initializer="random_normal")
    shape = (None, *[5] * rank, 2)
    layer.build(shape)
    bn = _bn(4, layer.compute_output_shape(shape))
    folding = BatchNormFolding(layer, bn)
    folded = transpose.from_config(layer.get_config())
    folded.build(shape)
    folded.kernel.assign(layer.kernel.numpy() * folding.kernel_scale(layer.kernel).numpy())
    folded.bias.assign(folding.folded_bias().numpy())
    x = RNG.normal(size=(3, *[5] * rank, 2)).astype("float32")
    np.testing.assert_allclose(folded(x).numpy(), bn(layer(x), training=False).numpy(), atol=1e-5)


def test_batch_terms_give_batch_norm_in_training_and_update_moving_statistics():
    conv, bn = _conv(), _bn(4, (None, 4, 4, 4), momentum=0.7)
    reference = keras.layers.BatchNormalization.from_config(bn.get_config())
    reference.build((None, 4, 4, 4))
    reference.set_weights(bn.get_weights())
    x = RNG.normal(size=(8, 6, 6, 2)).astype("float32")
    z = conv(x)
    folding = BatchNormFolding(conv, bn)
    folded_kernel = conv.kernel.numpy() * folding.kernel_scale(conv.kernel).numpy()
    correction, bias = folding.batch_terms(z)
    y = keras.ops.conv(x, folded_kernel).numpy() * correction.numpy() + bias.numpy()
    np.testing.assert_allclose(y, reference(z, training=True).numpy(), atol=1e-4)
    for ours, theirs in zip(bn.weights, reference.weights):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, err_msg=ours.name)


def test_build_builds_the_batch_norm_on_the_layer_output():
    conv, bn = _conv(), keras.layers.BatchNormalization()
    BatchNormFolding(conv, bn).build((None, 6, 6, 2))
    assert bn.built and tuple(bn.gamma.shape) == (4,)


def test_bad_arguments_are_named():
    conv = _conv()
    with pytest.raises(TypeError, match="`batch_norm` must be a BatchNormalization.*Dense"):
        BatchNormFolding(conv, keras.layers.Dense(2))
    with pytest.raises(ValueError, match="'act'.*Conv2D with activation 'relu'"):
        BatchNormFolding(
            keras.layers.Conv2D(2, 3, activation="relu", name="act"),
            keras.layers.BatchNormalization(),
        )
    with pytest.raises(ValueError, match="Received: LayerNormalization"):
        BatchNormFolding(keras.layers.LayerNormalization(), keras.layers.BatchNormalization())
