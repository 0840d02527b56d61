"""First-order Taylor importance: |w * dL/dw| summed over the batches since the last update."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.pruning import (
    ConstantSparsity,
    PrunableLayer,
    PruneLowMagnitude,
    UpdatePruningStep,
    prune_low_magnitude,
)

rng = np.random.default_rng(0)
X = rng.random((96, 6)).astype("float32")
Y = rng.random((96, 4)).astype("float32")


def dense_model(importance, schedule, kernel=None):
    inputs = keras.Input((6,))
    wrapper = prune_low_magnitude(keras.layers.Dense(4, name="fc"), schedule, importance=importance)
    model = keras.Model(inputs, wrapper(inputs))
    if kernel is not None:
        wrapper.layer.kernel.assign(kernel)
    return model, wrapper


def test_scores_equal_the_manual_sum():
    model, wrapper = dense_model("taylor", ConstantSparsity(0.5, begin_step=1000))
    model.compile(keras.optimizers.SGD(0.0), "mse")  # weights stay put: gradients comparable
    model.fit(X, Y, batch_size=32, shuffle=False, verbose=0, callbacks=[UpdatePruningStep()])
    kernel = wrapper.layer.kernel
    manual = np.zeros(kernel.shape)
    for b in range(3):
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(
                Y[b * 32 : (b + 1) * 32], model(X[b * 32 : (b + 1) * 32])
            )
        manual += np.abs(kernel.numpy() * tape.gradient(loss, kernel.value).numpy())
    np.testing.assert_allclose(wrapper.scores[0].numpy(), manual, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("importance,row_pruned", [("magnitude", False), ("taylor", True)])
def test_taylor_prunes_large_weights_that_do_not_matter(importance, row_pruned):
    x = X.copy()
    x[:, 0] = 0.0  # input 0 never fires: its weights have no effect on the loss
    kernel = rng.normal(0, 0.1, (6, 4)).astype("float32")
    kernel[0] = 5.0  # ...but they are the largest
    schedule = ConstantSparsity(1 / 6, begin_step=2, frequency=100)  # one update, at step 2
    model, wrapper = dense_model(importance, schedule, kernel)
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    model.fit(x, Y, batch_size=32, shuffle=False, verbose=0, callbacks=[UpdatePruningStep()])
    assert (wrapper.layer.kernel.numpy()[0] == 0).all() == row_pruned
    assert (wrapper.layer.kernel.numpy() == 0).sum() == 4


def test_scores_restart_after_an_update_and_survive_saving(tmp_path):
    model, wrapper = dense_model("taylor", ConstantSparsity(0.5, begin_step=0, frequency=3))
    model.compile(keras.optimizers.SGD(0.0), "mse")
    model.fit(X, Y, batch_size=32, shuffle=False, verbose=0, callbacks=[UpdatePruningStep()])
    assert wrapper.scores[0].numpy().any()  # steps 0, 1, 2 since the update at step 0
    model.fit(X[:32], Y[:32], batch_size=32, verbose=0, callbacks=[UpdatePruningStep()])
    kernel = wrapper.layer.kernel  # step 3: new masks, then one batch of scores
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(Y[:32], model(X[:32]))
    one_batch = np.abs(kernel.numpy() * tape.gradient(loss, kernel.value).numpy())
    np.testing.assert_allclose(wrapper.scores[0].numpy(), one_batch, rtol=1e-5, atol=1e-7)
    path = tmp_path / "taylor.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[1].importance_kind == "taylor"
    np.testing.assert_array_equal(loaded.layers[1].scores[0].numpy(), wrapper.scores[0].numpy())


def test_taylor_needs_trainable_variables_only():
    class WithState(keras.layers.Layer, PrunableLayer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2), name="w")
            self.count = self.add_weight(shape=(), name="count", trainable=False)

        def call(self, x):
            return x @ self.w

        def get_prunable_weights(self):
            return [self.w]

    wrapper = PruneLowMagnitude(WithState(name="stateful"), importance="taylor")
    with pytest.raises(ValueError, match=r"'stateful'.*non-trainable \['count'\]"):
        wrapper.build((None, 3))
    with pytest.raises(ValueError, match="importance='hessian'"):
        PruneLowMagnitude(keras.layers.Dense(2), importance="hessian")
