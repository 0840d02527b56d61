"""FactorizedConv2D: both schemes against Conv2D, the decompositions' errors, serialization."""

import keras
import numpy as np
import pytest

from tfcompress.factorization import FactorizedConv2D
from tfcompress.factorization.decompose import channel_factors, channel_kernel, spatial_matrix

GEOMETRIES = {
    "valid": {},
    "same_stride2": {"padding": "same", "strides": 2},
    "valid_stride_2x1": {"strides": (2, 1)},
    "same_dilated": {"padding": "same", "dilation_rate": 2},
    "rectangular_same": {"kernel_size": (3, 2), "padding": "same"},
    "even_same_stride2": {"kernel_size": 4, "padding": "same", "strides": 2},
}


def _conv(cin=5, filters=6, kernel_size=3, input_hw=(11, 10), seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    conv = keras.layers.Conv2D(filters, kernel_size, name="conv", **kwargs)
    conv.build((None, *input_hw, cin))
    if conv.use_bias:
        conv.bias.assign(np.random.default_rng(seed).normal(size=filters).astype("float32"))
    return conv


def _full_rank(scheme, conv):
    kh, kw, cin, cout = conv.kernel.shape
    return min(kh * cin, kw * cout) if scheme == "spatial" else (cin, cout)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("scheme", ["spatial", "channel"])
def test_full_rank_reproduces_the_convolution(scheme, geometry, rng):
    conv = _conv(activation="relu", **GEOMETRIES[geometry])
    factorized = FactorizedConv2D.from_conv2d(conv, rank=_full_rank(scheme, conv), scheme=scheme)
    x = rng.normal(size=(2, 11, 10, 5)).astype("float32")
    expected = keras.ops.convert_to_numpy(conv(x))
    out = keras.ops.convert_to_numpy(factorized(x))
    assert out.shape == expected.shape == factorized.compute_output_shape(x.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("filters,kernel_size", [(32, 3), (12, 1)])
def test_channel_ranks_above_the_unfoldings_rank_stay_exact(filters, kernel_size, rng):
    # A stem conv: 3x3x3 -> 32 has a [32, 27] output unfolding, so r_out = 32 is above
    # its rank (MobileNetV2's Conv1); a 1x1 conv 3 -> 12 the same with 12 > 3.
    conv = _conv(cin=3, filters=filters, kernel_size=kernel_size, padding="same")
    factorized = FactorizedConv2D.from_conv2d(conv, rank=(3, filters), scheme="channel")
    x = rng.normal(size=(2, 11, 10, 3)).astype("float32")
    np.testing.assert_allclose(factorized(x), conv(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rank", [1, 4, 9])
def test_spatial_error_is_the_discarded_singular_value_energy(rank, rng):
    conv = _conv(cin=4, filters=8, use_bias=False, padding="same")
    factorized = FactorizedConv2D.from_conv2d(conv, rank=rank, scheme="spatial", svd="full")
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    s = np.linalg.svd(spatial_matrix(kernel), compute_uv=False)
    error = kernel - factorized.effective_kernel()
    np.testing.assert_allclose((error**2).sum(), (s[rank:] ** 2).sum(), rtol=1e-4)
    # ... and the layer computes exactly the convolution with that kernel.
    reference = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
    reference.build((None, 11, 10, 4))
    reference.kernel.assign(factorized.effective_kernel())
    x = rng.normal(size=(2, 11, 10, 4)).astype("float32")
    np.testing.assert_allclose(factorized(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ranks", [(1, 1), (2, 5), (4, 3)])
def test_channel_error_is_what_the_core_does_not_hold(ranks):
    conv = _conv(cin=4, filters=8, use_bias=False)
    factorized = FactorizedConv2D.from_conv2d(conv, rank=ranks, scheme="channel")
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    error = ((kernel - factorized.effective_kernel()) ** 2).sum()
    core = channel_factors(kernel, ranks)[1]
    np.testing.assert_allclose(error, (kernel**2).sum() - (core**2).sum(), rtol=1e-4)
    # HOSVD: at most the energy each unfolding discards, summed.
    s_in = np.linalg.svd(np.moveaxis(kernel, 2, 0).reshape(4, -1), compute_uv=False)
    s_out = np.linalg.svd(np.moveaxis(kernel, 3, 0).reshape(8, -1), compute_uv=False)
    assert error <= (s_in[ranks[0] :] ** 2).sum() + (s_out[ranks[1] :] ** 2).sum() + 1e-6


def test_energy_ranks_per_scheme():
    conv = _conv(cin=4, filters=8)
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    s = np.linalg.svd(spatial_matrix(kernel), compute_uv=False)
    rank = FactorizedConv2D.from_conv2d(conv, energy=0.8, scheme="spatial").rank
    kept = np.cumsum(s**2) / (s**2).sum()
    assert kept[rank - 1] >= 0.8 - 1e-6 > kept[rank - 2]
    channel = FactorizedConv2D.from_conv2d(conv, energy=1.0, scheme="channel")
    assert channel.ranks == (4, 8)


@pytest.mark.parametrize(
    ("scheme", "rank", "kinds"),
    [
        ("spatial", 3, [((3, 1), (2, 1)), ((1, 3), (1, 2))]),
        ("channel", (2, 3), [((1, 1), (1, 1)), ((3, 3), (2, 2)), ((1, 1), (1, 1))]),
    ],
)
def test_to_layers_compute_the_same_in_sequence(scheme, rank, kinds, rng):
    conv = _conv(activation="relu", padding="same", strides=2)
    factorized = FactorizedConv2D.from_conv2d(conv, rank=rank, scheme=scheme)
    parts = factorized.to_layers()
    assert [(p.kernel_size, p.strides) for p in parts] == kinds
    assert [p.use_bias for p in parts] == [False] * (len(parts) - 1) + [True]
    x = rng.normal(size=(2, 11, 10, 5)).astype("float32")
    y = x
    for part in parts:
        y = part(y)
    np.testing.assert_allclose(y, factorized(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme", ["spatial", "channel"])
def test_config_and_keras_file_round_trip(scheme, reload, rng):
    rank = 3 if scheme == "spatial" else (2, 4)
    layer = FactorizedConv2D(
        6,
        (3, 2),
        rank=rank,
        scheme=scheme,
        strides=2,
        padding="same",
        activation="relu6",
        name="low",
    )
    config = layer.get_config()
    assert FactorizedConv2D.from_config(config).get_config() == config
    inputs = keras.Input((9, 9, 3))
    model = keras.Model(inputs, layer(inputs))
    loaded = reload(model)
    assert loaded.get_layer("low").ranks == layer.ranks
    x = rng.normal(size=(2, 9, 9, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank": 0}, r"'bad': `rank` must be a positive integer. Received: rank=0"),
        ({"rank": (2, 3)}, r"'bad': the spatial scheme has one rank .* Received: rank=\(2, 3\)"),
        ({"rank": 2, "scheme": "tucker"}, r"`scheme` must be one of .* Received: scheme='tucker'"),
        (
            {"rank": 2, "padding": "causal"},
            r"`padding` must be one of .* Received: padding='causal'",
        ),
        ({"rank": (2, 0), "scheme": "channel"}, r"Received: rank=0"),
        ({"rank": 2, "kernel_size": 0}, r"`kernel_size` must be a positive integer"),
    ],
)
def test_bad_arguments_name_layer_and_value(kwargs, message):
    kwargs = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        FactorizedConv2D(**kwargs, name="bad")


@pytest.mark.parametrize(
    ("scheme", "rank", "message"),
    [
        ("spatial", 10, r"min\(kh \* in, kw \* filters\) = 9 .* Received: rank=10"),
        ("channel", (4, 2), r"\(in, filters\) = \(3, 4\) .* Received: rank=\(4, 2\)"),
    ],
)
def test_rank_above_the_largest_fails_at_build(scheme, rank, message):
    with pytest.raises(ValueError, match=message):
        FactorizedConv2D(4, 3, rank=rank, scheme=scheme, name="bad")(np.zeros((1, 6, 6, 3)))


def test_from_conv2d_refuses_what_it_cannot_factorize():
    for layer, message in [
        (keras.layers.DepthwiseConv2D(3), "not a Conv2D layer"),
        (keras.layers.Conv2D(4, 3, groups=2), r"grouped convolution \(groups=2\)"),
    ]:
        layer.build((None, 8, 8, 4))
        with pytest.raises(ValueError, match=message):
            FactorizedConv2D.from_conv2d(layer, rank=1)
    with pytest.raises(ValueError, match="exactly one of `rank`"):
        FactorizedConv2D.from_conv2d(_conv(), rank=1, energy=0.5)
    with pytest.raises(ValueError, match=r"`energy` must be .* Received: energy=0"):
        FactorizedConv2D.from_conv2d(_conv(), energy=0)


def test_channel_factors_of_a_wide_conv_take_moments():
    # ResNet50's last 3x3 conv is 512 -> 512; a naive einsum over (kh, kw, c, n, r, s)
    # took minutes already at 256 channels (its time is the benchmark's to show, not a test's).
    kernel = np.random.default_rng(0).normal(size=(3, 3, 128, 128))
    down, core, up = channel_factors(kernel, (128, 128))
    np.testing.assert_allclose(channel_kernel(down, core, up), kernel, atol=1e-8)
