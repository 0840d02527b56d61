"""cluster_weights / ClusterWeights / strip_clustering on layers and on every kind of model."""

import copy
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.clustering import (
    CentroidInitialization,
    ClusterWeights,
    cluster_weights,
    strip_clustering,
)

rng = np.random.default_rng(0)


def small_cnn() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="cnn")


def fit(model, data, epochs=1, **kwargs):
    compile_classifier(model, learning_rate=3e-3)
    model.fit(
        data.x_train, data.y_train, epochs=epochs, batch_size=64, shuffle=False, verbose=0, **kwargs
    )
    return model


def unique_per_channel(value: np.ndarray, axes=(-1,)) -> int:
    """The largest number of distinct values in one channel (an index along `axes`)."""
    moved = np.moveaxis(value, axes, tuple(range(len(axes))))
    channels = int(np.prod(moved.shape[: len(axes)]))
    return max(len(np.unique(row)) for row in moved.reshape(channels, -1))


def kernels(model) -> dict[str, np.ndarray]:
    return {w.path.split("/")[-2]: w.numpy() for w in model.weights if w.path.endswith("kernel")}


@pytest.fixture(scope="module")
def trained(digits):
    keras.utils.set_random_seed(0)
    return fit(small_cnn(), digits, epochs=3)


@pytest.fixture(scope="module")
def clustered(trained, digits):
    """The trained model clustered to 8 values, before and after two epochs of fine-tuning."""
    before = {k: v.copy() for k, v in kernels(trained).items()}
    model = compile_classifier(cluster_weights(trained, number_of_clusters=8), 3e-3)
    loss_before = model.evaluate(digits.x_test, digits.y_test, verbose=0)[0]
    fit(model, digits, epochs=2)
    loss_after = model.evaluate(digits.x_test, digits.y_test, verbose=0)[0]
    return types.SimpleNamespace(
        model=model,
        plain=strip_clustering(model),
        original=before,
        loss_before=loss_before,
        loss_after=loss_after,
    )


def centroid_gradients(kernel_grad, indices, k, axes):
    """Each centroid's expected gradient: the sum of its members' kernel gradients."""
    if axes is None:
        return np.bincount(indices.ravel(), weights=kernel_grad.ravel(), minlength=k)
    front = tuple(range(len(axes)))
    grads = np.moveaxis(kernel_grad, axes, front)
    channels = int(np.prod(grads.shape[: len(axes)]))
    index = np.moveaxis(indices, axes, front).reshape(channels, -1)
    return np.stack(
        [np.bincount(i, weights=g, minlength=k) for i, g in zip(index, grads.reshape(channels, -1))]
    )


LAYERS = {
    "Dense": (lambda: keras.layers.Dense(6), (2, 12), None),
    "Conv2D": (lambda: keras.layers.Conv2D(4, 3), (2, 6, 6, 3), (3,)),
    # kernel [3, 3, 3, 1]: its width equals its channel count, a broadcasting trap.
    "DepthwiseConv2D": (lambda: keras.layers.DepthwiseConv2D(3), (2, 6, 6, 3), (2, 3)),
}


@pytest.mark.parametrize("preserve_sparsity", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_output_and_gradients_match_the_plain_layer_fed_the_gathered_kernel(
    kind, preserve_sparsity
):
    make, shape, axes = LAYERS[kind]
    layer = make()
    layer.build(shape)
    kernel = layer.kernel.numpy()
    if preserve_sparsity:
        layer.kernel.assign(np.where(rng.random(kernel.shape) < 0.5, 0.0, kernel))
    wrapper = ClusterWeights(layer, 4, "linear", preserve_sparsity=preserve_sparsity)
    wrapper.build(shape)
    assert wrapper.channel_axes == [axes]  # auto: per channel for convolutions only
    plain = make()
    plain.build(shape)
    plain.set_weights(wrapper.stripped_weights())
    x = rng.random(shape).astype("float32")
    weights = rng.random(plain(x).shape).astype("float32")
    with tf.GradientTape() as tape:
        y_wrapped = wrapper(x)
        loss = tf.reduce_sum(y_wrapped * weights)
    centroid_grad = tape.gradient(loss, wrapper.centroids[0])
    with tf.GradientTape() as tape:
        y_plain = plain(x)
        loss = tf.reduce_sum(y_plain * weights)
    kernel_grad = tape.gradient(loss, plain.kernel).numpy()
    np.testing.assert_allclose(y_wrapped.numpy(), y_plain.numpy(), rtol=1e-6)
    expected = centroid_gradients(kernel_grad, wrapper.indices[0].numpy(), 4, axes)
    if preserve_sparsity:
        expected[..., 0] = 0.0  # the zero centroid is fixed
        np.testing.assert_array_equal(plain.kernel.numpy() == 0, layer.kernel.numpy() == 0)
    np.testing.assert_allclose(
        tf.convert_to_tensor(centroid_grad).numpy(), expected, rtol=1e-5, atol=1e-6
    )
    # In training the original kernel gets the clustered kernel's gradient (straight through),
    # except where a preserved zero is.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(wrapper(x, training=True) * weights)
    through = tape.gradient(loss, layer.kernel).numpy()
    if preserve_sparsity:
        kernel_grad = np.where(layer.kernel.numpy() == 0, 0.0, kernel_grad)
    np.testing.assert_allclose(through, kernel_grad, rtol=1e-5, atol=1e-6)


def test_fine_tuning_improves_loss_and_strip_keeps_at_most_k_values(clustered, trained, digits):
    assert clustered.loss_after < clustered.loss_before
    assert [type(layer).__name__ for layer in clustered.model.layers[1:]] == [
        "ClusterWeights",
        "Flatten",
        "ClusterWeights",
        "ClusterWeights",
    ]
    plain = clustered.plain
    assert not any(isinstance(layer, ClusterWeights) for layer in plain.layers)
    expected = clustered.model.predict(digits.x_test, verbose=0)
    np.testing.assert_allclose(plain.predict(digits.x_test, verbose=0), expected, atol=1e-5)
    values = kernels(plain)
    assert len(np.unique(values["fc"])) <= 8 and len(np.unique(values["logits"])) <= 8
    assert unique_per_channel(values["conv"]) <= 8 < len(np.unique(values["conv"]))
    for name, original in clustered.original.items():  # the original model is untouched
        np.testing.assert_array_equal(kernels(trained)[name], original)


def test_stripped_model_converts_with_at_most_k_values_per_kernel(clustered):
    info = tc.TFLiteFile(tc.export_tflite(clustered.plain, mode="float32"))
    seen = []
    for op in info.ops:
        if op.name in ("FULLY_CONNECTED", "CONV_2D"):
            weights = info.constant(op.inputs[1]).data
            seen.append(op.name)
            if op.name == "CONV_2D":  # [out, kh, kw, in]: per output channel
                assert unique_per_channel(weights, axes=(0,)) <= 8
            else:
                assert len(np.unique(weights)) <= 8
    assert sorted(seen) == ["CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]


def test_pruned_model_stays_exactly_as_sparse(trained, digits):
    pruned = keras.models.clone_model(trained)
    pruned.set_weights(trained.get_weights())
    for weight in pruned.weights:
        if weight.path.endswith("kernel"):
            value = weight.numpy()
            weight.assign(np.where(np.abs(value) < np.quantile(np.abs(value), 0.7), 0.0, value))
    zeros = {name: value == 0 for name, value in kernels(pruned).items()}
    model = cluster_weights(pruned, 4, CentroidInitialization.DENSITY_BASED, preserve_sparsity=True)
    fit(model, digits)
    plain = strip_clustering(model)
    for name, value in kernels(plain).items():
        np.testing.assert_array_equal(value == 0, zeros[name], err_msg=name)
        assert unique_per_channel(value) <= 4 if name == "conv" else len(np.unique(value)) <= 4
    assert tc.pruning.get_sparsity(plain) == tc.pruning.get_sparsity(pruned)


def test_get_config_round_trip():
    wrapper = ClusterWeights(
        keras.layers.Conv2D(4, 3, name="c"),
        6,
        "density",
        preserve_sparsity=True,
        cluster_per_channel=False,
    )
    config = wrapper.get_config()
    assert config["cluster_centroids_init"] == "density" and config["name"] == "cluster_c"
    assert ClusterWeights.from_config(copy.deepcopy(config)).get_config() == config
    restored = keras.layers.deserialize(keras.layers.serialize(wrapper))
    assert isinstance(restored, ClusterWeights) and restored.get_config() == config


def test_save_and_load_mid_training_then_continue(trained, digits, tmp_path):
    model = fit(cluster_weights(trained, 6, "linear"), digits)
    path = tmp_path / "clustered.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], ClusterWeights)
    np.testing.assert_array_equal(
        loaded.layers[1].indices[0].numpy(), model.layers[1].indices[0].numpy()
    )
    np.testing.assert_array_equal(
        loaded.predict(digits.x_test, verbose=0), model.predict(digits.x_test, verbose=0)
    )
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    for m in (model, loaded):
        m.fit(digits.x_train, digits.y_train, batch_size=64, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        loaded.predict(digits.x_test, verbose=0), model.predict(digits.x_test, verbose=0), atol=1e-6
    )


def test_sequential_nested_skip_and_pass_through():
    layers = keras.layers
    inner = keras.Sequential(
        [keras.Input((6, 6, 4)), layers.Conv2D(8, 3, name="conv"), layers.BatchNormalization()],
        name="inner",
    )
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, name="stem"),
            inner,
            layers.Flatten(),
            layers.Dense(10, name="head"),
        ]
    )
    x = rng.random((3, 8, 8, 1)).astype("float32")
    before = model.predict(x, verbose=0)
    clustered = cluster_weights(model, 4, skip=["head", keras.layers.BatchNormalization])
    kinds = [type(layer).__name__ for layer in clustered.layers]
    assert kinds == ["ClusterWeights", "Sequential", "Flatten", "Dense"]
    assert [type(layer).__name__ for layer in clustered.layers[1].layers] == [
        "ClusterWeights",
        "BatchNormalization",
    ]
    plain = strip_clustering(clustered)
    assert isinstance(plain, keras.Sequential)
    np.testing.assert_allclose(
        plain.predict(x, verbose=0), clustered.predict(x, verbose=0), atol=1e-5
    )
    assert unique_per_channel(kernels(plain)["conv"]) <= 4
    np.testing.assert_array_equal(kernels(plain)["head"], kernels(model)["head"])
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)  # untouched


def test_layers_list_and_an_unbuilt_layer(digits):
    wrappers = cluster_weights([keras.layers.Dense(16), keras.layers.Dense(10)], 4)
    assert all(isinstance(w, ClusterWeights) for w in wrappers)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), *wrappers])
    fit(model, digits)  # centroids from the fresh initial weights, built inside the model
    for wrapper in wrappers:
        dense = strip_clustering(wrapper)
        assert isinstance(dense, keras.layers.Dense) and len(np.unique(dense.kernel.numpy())) <= 4
        np.testing.assert_array_equal(dense.bias.numpy(), wrapper.layer.bias.numpy())


@keras.saving.register_keras_serializable(package="tfcompress_tests")
class ClusteredNet(keras.Model):
    def __init__(self, units=24, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(units, activation="relu", name="hidden")
        self.head = keras.layers.Dense(10, name="head")

    def call(self, x):
        return self.head(self.hidden(self.flatten(x)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_built_subclassed_model(digits):
    net = fit(ClusteredNet(units=20), digits)
    clustered = cluster_weights(net, 5, skip=["head"])
    assert clustered is not net and isinstance(clustered.hidden, ClusterWeights)
    assert isinstance(net.hidden, keras.layers.Dense)  # the original is untouched
    assert not isinstance(clustered.head, ClusterWeights)
    fit(clustered, digits)
    plain = strip_clustering(clustered)
    assert type(plain) is ClusteredNet and isinstance(plain.hidden, keras.layers.Dense)
    assert plain.units == 20 and len(np.unique(plain.hidden.kernel.numpy())) <= 5
    np.testing.assert_allclose(
        plain.predict(digits.x_test, verbose=0),
        clustered.predict(digits.x_test, verbose=0),
        atol=1e-5,
    )


class TestBadInput:
    @pytest.mark.parametrize("k", [1, 0, 2.5, True])
    def test_number_of_clusters_below_two(self, k):
        with pytest.raises(
            ValueError, match=rf"number_of_clusters.*Received: number_of_clusters={k}"
        ):
            cluster_weights(keras.layers.Dense(4), k)
        with pytest.raises(ValueError, match=r"Layer 'fc'.*>= 2"):
            ClusterWeights(keras.layers.Dense(4, name="fc"), k)

    def test_more_clusters_than_weights(self):
        dense = keras.layers.Dense(4, name="fc")
        dense.build((None, 3))
        with pytest.raises(ValueError, match=r"'fc'.*12 weights in 'fc/kernel'.*=16"):
            cluster_weights(dense, 16)

    def test_more_clusters_than_weights_per_channel(self):
        model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, name="conv")])
        with pytest.raises(ValueError, match=r"'conv'.*9 weights in each of the 4 channels.*=16"):
            cluster_weights(model, 16, cluster_per_channel=True)
        auto = cluster_weights(model, 16)  # auto: 9 per channel is too few, so per tensor
        assert auto.layers[0].channel_axes == [None]

    def test_unknown_init(self):
        with pytest.raises(ValueError, match=r"'kmeans\+\+'.*cluster_centroids_init='kmeans'"):
            cluster_weights(keras.layers.Dense(4), 4, cluster_centroids_init="kmeans")

    def test_bad_per_channel_flag(self):
        with pytest.raises(ValueError, match="cluster_per_channel='yes'"):
            cluster_weights(keras.layers.Dense(4), 4, cluster_per_channel="yes")

    def test_already_clustered(self):
        clustered = cluster_weights(small_cnn(), 4)
        with pytest.raises(ValueError, match="already contains clustering wrappers"):
            cluster_weights(clustered, 4)
        with pytest.raises(ValueError, match="'cluster_fc' is already clustered"):
            cluster_weights(clustered.get_layer("cluster_fc"), 4)

    def test_unsupported_layer_given_explicitly(self):
        class Odd(keras.layers.Layer):
            pass

        with pytest.raises(ValueError, match=r"'odd'.*Odd.*register_clusterable\(Odd"):
            cluster_weights(Odd(name="odd"), 4)

    def test_unbuilt_model(self):
        with pytest.raises(ValueError, match="never built"):
            cluster_weights(keras.Sequential([keras.layers.Dense(4)]), 4)


@pytest.mark.parametrize("kind", ["Dense", "Conv2D"])
def test_training_reassigns_weights_to_their_nearest_centroid(kind):
    make, shape, axes = LAYERS[kind]
    layer = make()
    layer.build(shape)
    wrapper = ClusterWeights(layer, 4, "linear")
    wrapper.build(shape)
    centroids = wrapper.centroids[0].numpy()
    channel = centroids if axes is None else centroids[0]  # Conv2D: filter 0's centroids
    indices = wrapper.indices[0].numpy()
    if axes is not None:
        indices = indices[..., :1]  # filter 0
    where = tuple(np.argwhere(indices == np.argmin(channel))[0])  # a weight in the lowest cluster
    kernel = layer.kernel.numpy()
    kernel[where] = channel.max() + 0.01  # moved next to the largest centroid
    layer.kernel.assign(kernel)
    wrapper(rng.random(shape).astype("float32"))  # inference keeps the stored indices
    assert wrapper.indices[0].numpy()[where] == np.argmin(channel)
    wrapper(rng.random(shape).astype("float32"), training=True)
    assert wrapper.indices[0].numpy()[where] == np.argmax(channel)
    assert wrapper.clustered_weights()[0][where] == channel.max()
