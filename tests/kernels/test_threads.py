"""Several threads per layer give the same bits as one (FC splits outputs, conv splits rows)."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from kernel_cases import REF, int8_model, random_int8, run

from tfcompress.kernels import KernelDelegate


@pytest.fixture(scope="module")
def fc_and_conv():
    keras.utils.set_random_seed(5)
    image = keras.Input((13, 11, 6))
    x = keras.layers.Conv2D(40, 3, padding="same", activation="relu")(image)
    x = keras.layers.Conv2D(24, 1)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(70, activation="relu")(x)
    model = keras.Model(image, keras.layers.Dense(9)(x))
    samples = np.random.default_rng(5).normal(size=(64, 13, 11, 6)).astype("float32")
    return int8_model(model, samples)


@pytest.mark.parametrize("batch", [1, 5, 16])
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_bit_exact(fc_and_conv, batch, threads):
    x = random_int8((batch, 13, 11, 6), seed=batch)
    expected = run(fc_and_conv, x, REF)
    delegate = KernelDelegate(num_threads=threads, nodes="all")
    assert np.array_equal(run(fc_and_conv, x, delegate=delegate), expected)
    assert delegate.counters()["nodes_claimed"] >= 4


def test_one_delegate_shared_by_two_interpreters_in_two_threads(fc_and_conv, tmp_path):
    """Both interpreters' layers use the delegate's one thread pool; they must take turns.

    Before the pool serialized its callers, 2 of 3 such runs hung and others returned wrong
    outputs. A child process bounds a hang in time; it runs the 3 rounds (each a new
    delegate and new interpreters) so that TensorFlow is imported once, not 3 times.
    """
    path = tmp_path / "model.tflite"
    path.write_bytes(fc_and_conv)
    here = pathlib.Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), *sys.path])}
    result = subprocess.run(
        [sys.executable, str(here / "shared_delegate_check.py"), str(path), "400", "3"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    rounds = result.stdout.splitlines()
    assert rounds == ["hung=0 wrong=0"] * 3, (result.stdout, result.stderr[-2000:])
