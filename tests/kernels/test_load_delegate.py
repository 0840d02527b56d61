"""`tfcompress.kernels.load_delegate()` (and any `KernelDelegate`) goes straight into an
interpreter's `experimental_delegates=[...]`, like `tf.lite.experimental.load_delegate`'s."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from kernel_cases import int8_model

from tfcompress.kernels import KernelDelegate, load_delegate
from tfcompress.runtime import runtime


@pytest.fixture(scope="module")
def mlp() -> bytes:
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)]
    )
    return int8_model(model, np.random.default_rng(5).normal(size=(32, 32)).astype("float32"))


def _run(interpreter, x: np.ndarray) -> np.ndarray:
    interpreter.allocate_tensors()
    (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(given["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(taken["index"])


@pytest.mark.parametrize("backend", ["litert", "tf"])
@pytest.mark.parametrize("make", [load_delegate, KernelDelegate])
def test_the_interpreter_accepts_it(mlp: bytes, backend: str, make) -> None:
    x = np.random.default_rng(6).integers(-128, 128, size=(1, 32), dtype=np.int8)
    delegate = make(backend=backend, kernel="dense")
    assert isinstance(delegate, KernelDelegate)
    interpreter = runtime(backend).interpreter
    ours = _run(interpreter(model_content=mlp, experimental_delegates=[delegate]), x)
    assert delegate.counters()["nodes_claimed"] == 2
    resolver = runtime(backend).resolver.BUILTIN_REF
    reference = _run(interpreter(model_content=mlp, experimental_op_resolver_type=resolver), x)
    np.testing.assert_array_equal(ours, reference)
