"""Fixtures of the factorization tests."""

import keras
import numpy as np
import pytest


@pytest.fixture
def reload(tmp_path):
    """Saves a model as `.keras` and loads it back (no custom_objects: registered classes)."""

    def round_trip(model: keras.Model) -> keras.Model:
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        return keras.models.load_model(path)

    return round_trip


@pytest.fixture
def rng():
    return np.random.default_rng(0)
