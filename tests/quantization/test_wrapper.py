"""`QuantizeWrapper`, `QuantizeLayer` and `QuantizeAnnotate` on single layers."""

import keras
import numpy as np
import pytest

from tfcompress.quantization import (
    ActivationQuantizer,
    QuantizeAnnotate,
    QuantizeConfig,
    QuantizeLayer,
    QuantizeWrapper,
    WeightQuantizer,
)

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.normal(size=shape).astype("float32")


def test_wrapper_equals_plain_layer_fed_quantized_kernel():
    """Parity: the wrapper is the plain layer on fake-quantized weights, then output rounding."""
    dense = keras.layers.Dense(6, activation="relu")
    dense.build((None, 5))
    wrapper = QuantizeWrapper(dense)
    x = _x(32, 5)
    y = wrapper(x, training=True).numpy()  # sets the output range from this batch
    kernel = WeightQuantizer(per_channel=False)(dense.kernel).numpy()
    plain = np.maximum(x @ kernel + dense.bias.numpy(), 0)
    lo, hi = 0.0, plain.max()  # ReLU outputs: the range is [0, max]
    step = (hi - lo) / 255
    np.testing.assert_allclose(y, np.round(plain / step) * step, atol=1e-5)
    np.testing.assert_allclose(wrapper(x).numpy(), y, atol=1e-6)  # inference: stored range


def test_conv_weights_quantized_per_channel():
    conv = keras.layers.Conv2D(4, 3)
    conv.build((None, 6, 6, 2))
    wrapper = QuantizeWrapper(conv)
    wrapper.build((None, 6, 6, 2))
    (kernel,) = wrapper.quantized_weights().values()
    kernel = kernel.numpy()
    for c in range(4):  # each filter has its own scale: at most 255 levels, its max kept
        assert np.unique(kernel[..., c]).size <= 255
        assert np.isclose(np.abs(kernel[..., c]).max(), np.abs(conv.kernel.numpy()[..., c]).max())


def test_non_fused_activation_is_split_and_quantized_before():
    dense = keras.layers.Dense(4, activation="softmax")
    dense.build((None, 3))
    wrapper = QuantizeWrapper(dense)
    assert dense.get_config()["activation"] == "softmax"  # the user's layer is untouched
    assert wrapper.layer.get_config()["activation"] == "linear"
    assert wrapper.activation_name == "softmax"
    y = wrapper(_x(8, 3), training=True).numpy()
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    assert wrapper.output_ranges is None  # softmax's int8 range is fixed by TFLite
    assert wrapper.pre_activation_ranges is not None
    stripped = wrapper.stripped_layer()
    assert stripped.get_config()["activation"] == "softmax"


def test_batch_norm_folding_matches_conv_then_bn():
    x = _x(16, 8, 8, 3)
    conv = keras.layers.Conv2D(5, 3, use_bias=False)
    bn = keras.layers.BatchNormalization()
    conv.build((None, 8, 8, 3))
    bn.build((None, 6, 6, 5))
    bn.set_weights(
        [RNG.uniform(0.5, 2, 5), RNG.normal(size=5), RNG.normal(size=5), RNG.uniform(0.5, 3, 5)]
    )
    reference = bn(conv(x), training=False).numpy()
    wrapper = QuantizeWrapper(conv, batch_norm=bn)
    wrapper(x, training=True)
    folded = wrapper(x).numpy()
    step = (reference.max() - min(reference.min(), 0)) / 255
    assert np.abs(folded - reference).max() < 3 * step  # 8-bit weights and outputs
    plain = wrapper.stripped_layer()  # a conv with BN inside its weights and a bias
    assert plain.use_bias
    assert np.abs(plain(x).numpy() - reference).max() < 2 * step


def test_depthwise_batch_norm_folding():
    x = _x(4, 6, 6, 3)
    dw = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    bn = keras.layers.BatchNormalization()
    dw.build((None, 6, 6, 3))
    bn.build((None, 4, 4, 6))
    bn.set_weights(
        [RNG.uniform(0.5, 2, 6), RNG.normal(size=6), RNG.normal(size=6), RNG.uniform(0.5, 3, 6)]
    )
    reference = bn(dw(x), training=False).numpy()
    plain = QuantizeWrapper(dw, batch_norm=bn).stripped_layer()
    step = np.abs(reference).max() / 127
    assert np.abs(plain(x).numpy() - reference).max() < 2 * step


def test_fold_needs_linear_foldable_layer():
    bn = keras.layers.BatchNormalization()
    with pytest.raises(ValueError, match="'act'.*activation 'relu'"):
        QuantizeWrapper(keras.layers.Dense(3, activation="relu", name="act"), batch_norm=bn)
    with pytest.raises(ValueError, match="LayerNormalization"):
        QuantizeWrapper(keras.layers.LayerNormalization(), batch_norm=bn)


def test_unknown_layer_error_names_it_and_says_how_to_register():
    class Odd(keras.layers.Layer):
        def call(self, x):
            return x * 2

    with pytest.raises(ValueError, match=r"'odd'.*Odd.*register_quantize_config\(Odd, fn\)"):
        QuantizeWrapper(Odd(name="odd"))


def test_wrapping_twice_is_refused():
    wrapper = QuantizeWrapper(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="already quantized"):
        QuantizeWrapper(wrapper)


def test_config_naming_a_missing_weight():
    config = QuantizeConfig({"gamma": WeightQuantizer()})
    wrapper = QuantizeWrapper(keras.layers.Dense(2, name="d"), config)
    with pytest.raises(ValueError, match=r"'d'.*\['gamma'\].*\['kernel', 'bias'\]"):
        wrapper.build((None, 3))


def test_custom_config_and_roundtrip():
    config = QuantizeConfig({"kernel": WeightQuantizer(4, per_channel=False)}, None)
    wrapper = QuantizeWrapper(keras.layers.Dense(3, activation="tanh"), config)
    again = QuantizeWrapper.from_config(wrapper.get_config())
    assert again.quantize_config == config
    assert again.activation_name == "tanh"
    x = _x(4, 2)
    wrapper(x)
    again(x)
    again.set_weights(wrapper.get_weights())
    np.testing.assert_allclose(again(x).numpy(), wrapper(x).numpy())


def test_quantize_layer_and_annotate_are_serializable():
    layer = QuantizeLayer(ActivationQuantizer(ema_decay=0.5), name="q")
    again = QuantizeLayer.from_config(layer.get_config())
    assert again.quantizer == layer.quantizer
    annotate = QuantizeAnnotate(keras.layers.Dense(2), QuantizeConfig())
    again = QuantizeAnnotate.from_config(annotate.get_config())
    assert again.quantize_config == QuantizeConfig()
    x = _x(3, 4)
    np.testing.assert_allclose(annotate(x).numpy(), annotate.layer(x).numpy())


def test_standalone_batch_norm_keeps_updating_its_statistics():
    bn = keras.layers.BatchNormalization(momentum=0.5)
    wrapper = QuantizeWrapper(bn)
    x = _x(64, 3) * 4 + 10
    wrapper(x, training=True)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.5 * x.mean(0), rtol=1e-4)
    wrapper(x, training=False)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.5 * x.mean(0), rtol=1e-4)


def test_recurrent_layer_runs_on_quantized_kernels():
    gru = QuantizeWrapper(keras.layers.GRU(4))
    x = _x(2, 5, 3)
    y = gru(x, training=True).numpy()
    assert y.shape == (2, 4)
    kernels = [v for v in gru.quantized_weights().values()]
    assert len(kernels) == 2 and all(np.unique(k.numpy()).size <= 255 for k in kernels)


def test_folded_batch_norm_trains_like_batch_norm():
    """Training uses batch statistics (corrected output) and updates the moving ones like BN."""
    x = _x(32, 8, 8, 3)
    conv = keras.layers.Conv2D(5, 3, use_bias=True, bias_initializer="random_normal")
    bn = keras.layers.BatchNormalization(momentum=0.8)
    conv.build((None, 8, 8, 3))
    bn.build((None, 6, 6, 5))
    bn.set_weights(
        [RNG.uniform(0.5, 2, 5), RNG.normal(size=5), RNG.normal(size=5), RNG.uniform(0.5, 3, 5)]
    )
    reference_bn = keras.layers.BatchNormalization.from_config(bn.get_config())
    reference_bn.build((None, 6, 6, 5))
    reference_bn.set_weights(bn.get_weights())
    reference = reference_bn(conv(x), training=True).numpy()  # batch statistics
    wrapper = QuantizeWrapper(conv, batch_norm=bn)
    y = wrapper(x, training=True).numpy()
    step = (reference.max() - min(reference.min(), 0)) / 255
    assert np.abs(y - reference).max() < 3 * step
    np.testing.assert_allclose(bn.moving_mean.numpy(), reference_bn.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), reference_bn.moving_variance.numpy(), rtol=1e-4
    )


def test_saved_layout_stays_what_earlier_files_hold(reload):
    """`.keras` files store variables by owner and order and the config by key: both are pinned,
    so files saved before the wrapper was split into its parts still load."""
    conv = keras.layers.Conv2D(2, 3, name="conv")
    conv.build((None, 5, 5, 1))
    conv.kernel.assign(np.where(np.arange(18).reshape(3, 3, 1, 2) % 3, 0.5, 0.0))
    bn = keras.layers.BatchNormalization(name="bn")
    folded = QuantizeWrapper(conv, batch_norm=bn, preserve_sparsity=True, preserve_clusters=True)
    dense = keras.layers.Dense(3, activation="softmax", name="fc")
    split = QuantizeWrapper(dense, preserve_clusters=True)
    inputs = keras.Input((5, 5, 1))
    model = keras.Model(inputs, split(keras.layers.Flatten()(folded(inputs))))
    assert [w.path for w in model.weights] == [
        "conv/kernel",
        "quant_conv/centroids_0",
        "quant_conv/sparsity_mask_0",
        "quant_conv/cluster_indices_0",
        "quant_conv/output_min",
        "quant_conv/output_max",
        "quant_conv/output_initialized",
        "conv/bias",
        "quant_conv/bn/gamma",
        "quant_conv/bn/beta",
        "quant_conv/bn/moving_mean",
        "quant_conv/bn/moving_variance",
        "quant_fc/fc/kernel",
        "quant_fc/centroids_0",
        "quant_fc/cluster_indices_0",
        "quant_fc/output_min",
        "quant_fc/output_max",
        "quant_fc/output_initialized",
        "quant_fc/pre_activation_min",
        "quant_fc/pre_activation_max",
        "quant_fc/pre_activation_initialized",
        "quant_fc/fc/bias",
    ]
    assert sorted(folded.get_config()) == [
        "activation",
        "batch_norm",
        "dtype",
        "layer",
        "name",
        "num_centroids",
        "preserve_clusters",
        "preserve_sparsity",
        "quantize_config",
        "trainable",
    ]
    assert folded.get_config()["num_centroids"] == [2]
    assert split.get_config()["activation"] == "softmax"
    x = _x(4, 5, 5, 1)
    model(x, training=True)
    loaded = reload(model)
    assert len(loaded.weights) == len(model.weights)
    for ours, theirs in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
