"""`run_layer_test` itself: a correct layer passes, and each kind of broken layer fails."""

import keras
import pytest
from layer_checks import run_layer_test


@keras.saving.register_keras_serializable(package="tfcompress_layer_checks")
class Scale(keras.layers.Layer):
    """`x * w`, one weight per feature; `forget_config` and `float32_output` break it."""

    def __init__(self, factor=1.0, forget_config=False, float32_output=False, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.forget_config, self.float32_output = factor, forget_config, float32_output

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        y = x * keras.ops.cast(self.w, x.dtype) * self.factor
        return keras.ops.cast(y, "float32") if self.float32_output else y

    def get_config(self):
        config = {**super().get_config(), "forget_config": self.forget_config}
        config["float32_output"] = self.float32_output
        return config if self.forget_config else {**config, "factor": self.factor}


class Unregistered(Scale):
    pass


def test_a_correct_layer_passes():
    model = run_layer_test(lambda: Scale(2.0), (3, 4), (3, 4), expected_num_trainable_weights=1)
    assert isinstance(model.layers[-1], Scale)


def test_weight_counts_are_checked():
    with pytest.raises(AssertionError):
        run_layer_test(Scale, (3, 4), (3, 4), expected_num_trainable_weights=2)


def test_output_shape_is_checked():
    with pytest.raises(AssertionError):
        run_layer_test(Scale, (3, 4), (3, 5))


def test_a_config_missing_an_argument_fails():
    with pytest.raises(AssertionError, match="Not equal to tolerance"):  # the reloaded outputs
        run_layer_test(lambda: Scale(2.0, forget_config=True), (3, 4), (3, 4))


def test_an_unregistered_layer_fails_the_keras_round_trip():
    with pytest.raises(TypeError, match="Unregistered"):
        run_layer_test(Unregistered, (3, 4), (3, 4), run_mixed_precision_check=False)


def test_a_float32_output_fails_mixed_precision_and_the_policy_is_restored():
    with pytest.raises(AssertionError, match="float32"):
        run_layer_test(lambda: Scale(float32_output=True), (3, 4), (3, 4))
    assert keras.config.dtype_policy().name == "float32"
    run_layer_test(
        lambda: Scale(float32_output=True), (3, 4), (3, 4), run_mixed_precision_check=False
    )
