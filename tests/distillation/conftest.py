"""Fixtures of the distillation tests: a small CNN teacher on the 8x8 digits, trained once."""

import keras
import pytest
from helpers import compile_classifier, fit_in_fixed_order


def tiny_cnn(filters: int = 8, units: int = 32, name: str = "tiny_cnn") -> keras.Model:
    """conv (3x3) - flatten - fc - logits on 8x8 digits; no dropout, so runs are repeatable."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(filters, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name=name)


@pytest.fixture(scope="session")
def teacher(digits):
    """A frozen teacher at about 95% test accuracy."""
    keras.utils.set_random_seed(0)
    model = compile_classifier(tiny_cnn(16, 64, name="teacher"), learning_rate=1e-2)
    fit_in_fixed_order(model, digits.x_train, digits.y_train, epochs=6, seed=0)
    model.trainable = False
    return model


@pytest.fixture
def student():
    keras.utils.set_random_seed(1)
    return tiny_cnn(8, 16, name="student")


@pytest.fixture
def cnn():
    """The builder of the teacher's architecture, `tiny_cnn(filters, units, name)`."""
    return tiny_cnn
