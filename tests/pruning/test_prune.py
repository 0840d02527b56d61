"""prune_low_magnitude / UpdatePruningStep / strip_pruning on every kind of model."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    PrunableLayer,
    PruneLowMagnitude,
    PruningSummaries,
    UpdatePruningStep,
    get_sparsity,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.reporting.keras_stats import keras_layer_stats

FAST = ConstantSparsity(0.75, begin_step=0, frequency=5)


def fit(model, data, epochs=1, n=512, **kwargs):
    compile_classifier(model)
    model.fit(
        data.x_train[:n],
        data.y_train[:n],
        epochs=epochs,
        batch_size=64,
        shuffle=False,
        verbose=0,
        callbacks=[UpdatePruningStep()],
        **kwargs,
    )
    return model


def kernel_sparsity(model) -> dict[str, float]:
    return {k.split("/")[-2]: v for k, v in get_sparsity(model).items()}


def test_zero_sparsity_trains_exactly_like_the_plain_model(digits):
    keras.utils.set_random_seed(0)
    plain = tc.models.lenet_300_100(input_shape=(8, 8, 1))
    pruned = prune_low_magnitude(plain, ConstantSparsity(0.0, 0, frequency=1))
    np.testing.assert_array_equal(plain.predict(digits.x_test), pruned.predict(digits.x_test))
    for model in (plain, pruned):
        compile_classifier(model)
        callbacks = [UpdatePruningStep()] if model is pruned else []
        model.fit(
            digits.x_train,
            digits.y_train,
            epochs=2,
            batch_size=32,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
    np.testing.assert_array_equal(plain.predict(digits.x_test), pruned.predict(digits.x_test))


def test_training_without_the_callback_says_what_to_add(digits):
    model = compile_classifier(prune_low_magnitude(tc.models.lenet_300_100((8, 8, 1)), FAST))
    with pytest.raises(tf.errors.InvalidArgumentError, match="UpdatePruningStep"):
        model.fit(digits.x_train[:64], digits.y_train[:64], verbose=0)


def test_functional_model_reaches_target_and_strips(mnist):
    model = prune_low_magnitude(tc.models.lenet_300_100(), FAST, skip=["logits"])
    assert [type(layer).__name__ for layer in model.layers[2:]] == [
        "PruneLowMagnitude",
        "PruneLowMagnitude",
        "Dense",
    ]
    fit(model, mnist)
    assert kernel_sparsity(model) == {"fc1": 0.75, "fc2": 0.75, "logits": 0.0}
    plain = strip_pruning(model)
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in plain.layers)
    np.testing.assert_allclose(
        plain.predict(mnist.x_test[:50]), model.predict(mnist.x_test[:50]), atol=1e-6
    )
    assert kernel_sparsity(plain) == {"fc1": 0.75, "fc2": 0.75, "logits": 0.0}


def test_sequential_and_polynomial_schedule(digits):
    layers = [
        keras.layers.Flatten(),
        keras.layers.Dense(32, name="a"),
        keras.layers.Dense(10, name="b"),
    ]
    model = keras.Sequential([keras.Input((8, 8, 1)), *layers])
    pruned = prune_low_magnitude(model, PolynomialDecay(0.0, 0.6, 0, 20, frequency=4))
    assert isinstance(pruned, keras.Sequential)
    fit(pruned, digits, n=1024, epochs=2)  # 32 steps: past end_step
    assert kernel_sparsity(pruned) == pytest.approx({"a": 0.6, "b": 0.6}, abs=0.01)


def test_nested_model(digits):
    inner = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, name="hidden")], name="inner"
    )
    inputs = keras.Input((8, 8, 1))
    x = inner(keras.layers.Flatten()(inputs))
    outer = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))
    pruned = prune_low_magnitude(outer, FAST)
    fit(pruned, digits)
    assert kernel_sparsity(pruned) == {"hidden": 0.75, "out": 0.75}
    assert kernel_sparsity(strip_pruning(pruned)) == {"hidden": 0.75, "out": 0.75}


def test_subclassed_model_with_wrapped_layers(digits):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten = keras.layers.Flatten()
            self.hidden = prune_low_magnitude(keras.layers.Dense(32, activation="relu"), FAST)
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.hidden(self.flatten(x)))

    net = Net()
    net(digits.x_test[:1])
    fit(net, digits)
    assert kernel_sparsity(net) == {"dense": 0.75, "dense_1": 0.0} or set(
        kernel_sparsity(net).values()
    ) == {0.75, 0.0}
    plain = strip_pruning(net.hidden)
    assert isinstance(plain, keras.layers.Dense)
    zeros = 1 - np.count_nonzero(plain.kernel.numpy()) / plain.kernel.numpy().size
    assert zeros == 0.75
    with pytest.raises(ValueError, match="already contains pruning wrappers"):
        prune_low_magnitude(net)
    # Net() takes no constructor arguments, not even `name`: it is re-created from none.
    stripped = strip_pruning(net)
    assert type(stripped.hidden) is keras.layers.Dense  # the attribute the call uses
    np.testing.assert_allclose(stripped(digits.x_test), net(digits.x_test), atol=1e-6)
    np.testing.assert_array_equal(stripped.hidden.kernel.numpy(), plain.kernel.numpy())


@keras.saving.register_keras_serializable(package="tfcompress_tests")
class SubclassedNet(keras.Model):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(units, activation="relu", name="hidden")
        self.head = keras.layers.Dense(10, name="head")

    def call(self, x):
        return self.head(self.hidden(self.flatten(x)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_built_subclassed_model_whole(digits):
    net = SubclassedNet(units=24)
    compile_classifier(net).fit(digits.x_train, digits.y_train, epochs=1, verbose=0)
    before = net.predict(digits.x_test, verbose=0)
    pruned = prune_low_magnitude(net, FAST, skip=["head"])
    assert pruned is not net and isinstance(pruned.hidden, PruneLowMagnitude)
    assert not isinstance(pruned.head, PruneLowMagnitude)
    assert isinstance(net.hidden, keras.layers.Dense)  # the original is untouched
    np.testing.assert_allclose(pruned.predict(digits.x_test, verbose=0), before, atol=1e-5)
    fit(pruned, digits)
    assert kernel_sparsity(pruned) == {"hidden": 0.75, "head": 0.0}
    plain = strip_pruning(pruned)
    assert type(plain) is SubclassedNet and isinstance(plain.hidden, keras.layers.Dense)
    assert plain.units == 24 and kernel_sparsity(plain) == {"hidden": 0.75, "head": 0.0}
    np.testing.assert_allclose(
        plain.predict(digits.x_test, verbose=0), pruned.predict(digits.x_test, verbose=0), atol=1e-5
    )


def test_block_and_n_m_structures_after_training(mnist):
    for kwargs, expected in [
        ({"block_size": (16, 4)}, "block 16x4"),
        ({"sparsity_m_by_n": (2, 4)}, "2:4"),
    ]:
        model = prune_low_magnitude(tc.models.lenet_300_100(), FAST, skip=["logits"], **kwargs)
        plain = strip_pruning(fit(model, mnist))
        rows = {r.name: r for r in keras_layer_stats(plain)}
        assert rows["fc1"].structure == expected and rows["fc2"].structure == expected
        content = tc.export_tflite(plain, mode="dynamic")
        ops = {r.name: r for r in tc.report(tflite=content).ops}
        assert ops["fc1"].structure == expected  # the zeros survive conversion


def test_layer_overrides_and_skips(mnist):
    model = prune_low_magnitude(
        tc.models.small_cnn(),
        FAST,
        layer_sparsity={"fc1": 0.9, "conv1": 0.0},
        skip=[keras.layers.Conv2D],
    )
    wrapped = {layer.layer.name for layer in model.layers if isinstance(layer, PruneLowMagnitude)}
    assert wrapped == {"fc1", "logits"}
    fit(model, mnist, n=256)
    assert kernel_sparsity(model)["fc1"] == pytest.approx(0.9)
    by_function = prune_low_magnitude(
        tc.models.lenet_300_100(),
        FAST,
        layer_sparsity=lambda layer: 0.5 if layer.name == "fc2" else None,
    )
    fit(by_function, mnist, n=256)
    assert kernel_sparsity(by_function) == {"fc1": 0.75, "fc2": 0.5, "logits": 0.75}


def test_global_threshold_prunes_layers_unevenly(mnist):
    model = prune_low_magnitude(tc.models.lenet_300_100(), FAST, scope="global")
    fit(model, mnist)
    sparsity = kernel_sparsity(model)
    sizes = {"fc1": 784 * 300, "fc2": 300 * 100, "logits": 100 * 10}
    overall = sum(sparsity[k] * n for k, n in sizes.items()) / sum(sizes.values())
    assert overall == pytest.approx(0.75, abs=1e-4)
    assert sparsity["logits"] < sparsity["fc1"]  # small, important layer keeps more


def test_layers_without_weights_pass_through(mnist):
    model = prune_low_magnitude(tc.models.tiny_mobilenet(), FAST)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"BatchNormalization", "Add", "ReLU", "GlobalAveragePooling2D"} <= kinds
    fit(model, mnist, n=256)
    assert set(kernel_sparsity(model).values()) == {0.75}


def test_custom_layer_through_the_protocol(digits):
    @keras.saving.register_keras_serializable(package="tfcompress_tests")
    class Scale(keras.layers.Layer, PrunableLayer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 16), name="w")

        def call(self, x):
            return keras.ops.matmul(x, self.w)

        def get_prunable_weights(self):
            return [self.w]

    inputs = keras.Input((8, 8, 1))
    x = Scale()(keras.layers.Flatten()(inputs))
    model = prune_low_magnitude(keras.Model(inputs, keras.layers.Dense(10)(x)), FAST)
    fit(model, digits)
    assert set(get_sparsity(model).values()) == {0.75}


def test_mixed_precision_keeps_the_mask(digits):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = prune_low_magnitude(tc.models.lenet_300_100((8, 8, 1)), FAST)
        fit(model, digits)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert set(kernel_sparsity(model).values()) == {0.75}


def test_resume_takes_the_latest_step_of_any_wrapper(digits):
    model = fit(prune_low_magnitude(tc.models.lenet_300_100((8, 8, 1)), FAST), digits, n=320)
    wrappers = [layer for layer in model.layers if isinstance(layer, PruneLowMagnitude)]
    assert [int(w.pruning_step.numpy()) for w in wrappers] == [5, 5, 5]
    wrappers[1].pruning_step.assign(3)  # as a checkpoint written mid-epoch would hold it
    model.fit(
        digits.x_train[:64],
        digits.y_train[:64],
        batch_size=64,
        verbose=0,
        callbacks=[UpdatePruningStep()],
    )
    assert [int(w.pruning_step.numpy()) for w in wrappers] == [6, 6, 6]


def test_save_and_load_mid_pruning_then_resume(digits, tmp_path):
    schedule = PolynomialDecay(0.0, 0.8, 0, 60, frequency=2)
    model = fit(prune_low_magnitude(tc.models.lenet_300_100((8, 8, 1)), schedule), digits, n=960)
    step = int(model.layers[2].pruning_step.numpy())
    assert step == 15  # completed steps
    mid = kernel_sparsity(model)["fc1"]
    path = tmp_path / "pruning.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    wrapper = loaded.layers[2]
    assert isinstance(wrapper, PruneLowMagnitude) and wrapper.pruning_schedule == schedule
    assert int(wrapper.pruning_step.numpy()) == step
    np.testing.assert_array_equal(wrapper.masks[0].numpy(), model.layers[2].masks[0].numpy())
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    loaded.fit(
        digits.x_train,
        digits.y_train,
        epochs=4,
        batch_size=64,
        verbose=0,
        callbacks=[UpdatePruningStep()],
    )
    assert int(wrapper.pruning_step.numpy()) == step + 4 * 23
    assert mid < 0.8 and kernel_sparsity(loaded)["fc1"] == pytest.approx(0.8)


def test_pruning_summaries_write_sparsity_and_threshold(digits, tmp_path):
    from tensorflow.core.util import event_pb2

    model = prune_low_magnitude(tc.models.lenet_300_100((8, 8, 1)), FAST)
    callbacks = [UpdatePruningStep(), PruningSummaries(tmp_path, update_freq=5)]
    compile_classifier(model).fit(
        digits.x_train[:640], digits.y_train[:640], batch_size=64, verbose=0, callbacks=callbacks
    )
    scalars = {}
    for path in tmp_path.iterdir():
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor)))
                )
    assert scalars["fc1/sparsity_0"][-1] == (10, 0.75)
    assert [step for step, _ in scalars["fc1/sparsity_0"]][:2] == [5, 10]
    stored = float(model.layers[2].thresholds[0].numpy())
    assert scalars["fc1/threshold_0"][-1][1] == pytest.approx(stored) and stored > 0


def test_mask_update_keeps_largest_and_records_threshold():
    wrapper = PruneLowMagnitude(keras.layers.Dense(8), FAST)
    wrapper.build((None, 16))
    before = np.abs(wrapper.layer.kernel.numpy())
    wrapper.update_masks(0.5)
    kernel = wrapper.layer.kernel.numpy()
    assert (kernel == 0).mean() == 0.5
    kept = before[kernel != 0]
    assert float(wrapper.thresholds[0].numpy()) == pytest.approx(kept.min())
    assert before[kernel == 0].max() <= kept.min()


class TestBadInput:
    def test_sparsity_out_of_range(self):
        with pytest.raises(ValueError, match=r"layer_sparsity\['fc1'\].*1.5"):
            prune_low_magnitude(tc.models.lenet_300_100(), FAST, layer_sparsity={"fc1": 1.5})

    def test_n_not_below_m(self):
        with pytest.raises(ValueError, match=r"'fc'.*N < M.*\(4, 4\)"):
            prune_low_magnitude(keras.layers.Dense(8, name="fc"), sparsity_m_by_n=(4, 4))

    def test_block_that_does_not_divide_names_layer_and_dimension(self):
        # On the whole model the layer is left dense with a warning; named, it is an error.
        with pytest.warns(UserWarning, match=r"'logits'.*does not fit.*output dimension \(10"):
            prune_low_magnitude(tc.models.lenet_300_100(), block_size=(16, 4))
        with pytest.raises(ValueError, match=r"'logits'.*does not fit.*output dimension \(10"):
            prune_low_magnitude(
                tc.models.lenet_300_100(), block_size=(16, 4), layer_sparsity={"logits": 0.5}
            )

    def test_unsupported_layer_given_explicitly(self):
        class Odd(keras.layers.Layer):
            pass

        with pytest.raises(ValueError, match=r"'odd'.*Odd.*register_prunable\(Odd"):
            prune_low_magnitude(Odd(name="odd"))

    def test_already_pruned(self):
        pruned = prune_low_magnitude(tc.models.lenet_300_100(), FAST)
        with pytest.raises(ValueError, match="already contains pruning wrappers"):
            prune_low_magnitude(pruned)
        with pytest.raises(ValueError, match="already wrapped"):
            prune_low_magnitude(pruned.layers[2])

    def test_global_with_per_layer_targets(self):
        with pytest.raises(ValueError, match="scope='global'"):
            prune_low_magnitude(tc.models.lenet_300_100(), scope="global", layer_sparsity={})

    def test_callback_without_wrappers(self, digits):
        model = compile_classifier(tc.models.lenet_300_100((8, 8, 1)))
        with pytest.raises(ValueError, match="no pruning wrappers"):
            model.fit(
                digits.x_train[:32], digits.y_train[:32], verbose=0, callbacks=[UpdatePruningStep()]
            )
