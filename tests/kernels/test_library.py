"""The built libraries themselves: exported symbols, dependencies, and the Bazel build.

The pip build (`pip install -e .`, into tfcompress/kernels/) is always checked.
The Bazel build (`bazel build //kernels:tfcompress_kernels`, which CI runs before
pytest) is checked when bazel-bin holds it: same symbols, same dependencies, and
bit-exact on a model.
"""

from __future__ import annotations

import shutil
import subprocess

import keras
import numpy as np
import pytest
from kernel_cases import (
    KERNELS,
    REF,
    bazel_library,
    check_counters,
    expected_sparse,
    int8_model,
    random_int8,
    run,
    set_block_sparse,
)

from tfcompress.kernels import KernelDelegate, library_path

PLUGIN = {"tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate"}
# What tfcompress.kernels.library calls through ctypes.
USED = {
    "tfc_counter_count",
    "tfc_counter_name",
    "tfc_delegate_counter",
    "tfc_delegate_isa",
    "tfc_best_isa",
    "tfc_node_info_size",
    "tfc_delegate_node_count",
    "tfc_delegate_node",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found; install binutils (nm) / libc-bin (ldd)")
    return path


def exported(path: str) -> set[str]:
    """Names of the defined dynamic symbols of a shared library."""
    result = subprocess.run(
        [tool("nm"), "-D", "--defined-only", path], capture_output=True, text=True, check=True
    )
    return {line.split()[-1].split("@")[0] for line in result.stdout.splitlines() if line.strip()}


def needed(path: str) -> str:
    result = subprocess.run([tool("ldd"), path], capture_output=True, text=True, check=True)
    return result.stdout


def check_symbols(path: str) -> set[str]:
    names = exported(path)
    stray = {n for n in names if n not in PLUGIN and not n.startswith("tfc_")}
    assert not stray, f"{path} exports more than the plugin entry points and tfc_*: {stray}"
    assert PLUGIN | USED <= names, f"{path} lacks {sorted(PLUGIN | USED - names)}"
    return names


def check_dependencies(path: str) -> None:
    dependencies = needed(path)
    assert "libstdc++" not in dependencies, dependencies  # linked with -static-libstdc++
    assert "libgcc_s" not in dependencies, dependencies  # and -static-libgcc


@pytest.fixture(scope="module")
def bazel_built() -> str:
    path = bazel_library()
    if path is None:
        if shutil.which("bazel"):
            pytest.skip(
                "bazel is installed but bazel-bin/kernels/libtfcompress_kernels.so is not "
                "built; run `bazel build //kernels:tfcompress_kernels` first"
            )
        pytest.skip(
            "bazel is not installed and bazel-bin/kernels/libtfcompress_kernels.so does not "
            "exist (CI builds it with `bazel build //kernels:tfcompress_kernels`)"
        )
    return path


@pytest.fixture(scope="module")
def conv_fc_model() -> bytes:
    """Conv 3x3 -> Dense (16x4 block-sparse, 70% of blocks zero) -> Dense logits."""
    keras.utils.set_random_seed(20)
    rng = np.random.default_rng(20)
    x = keras.Input((10, 9, 3))
    conv = keras.layers.Conv2D(24, 3, strides=2, activation="relu")
    hidden = keras.layers.Dense(96, activation="relu")
    logits = keras.layers.Dense(10)
    y = logits(hidden(keras.layers.Flatten()(conv(x))))
    model = keras.Model(x, y)
    for layer, density in [(conv, 1.0), (hidden, 0.3), (logits, 1.0)]:
        set_block_sparse(layer, density, rng)
    return int8_model(model, rng.normal(size=(32, 10, 9, 3)).astype("float32"))


def test_pip_library_exports_only_the_plugin_and_tfc_symbols() -> None:
    check_symbols(library_path())


def test_pip_library_does_not_need_libstdcxx() -> None:
    check_dependencies(library_path())


def test_bazel_library_exports_the_same_symbols(bazel_built: str) -> None:
    assert check_symbols(bazel_built) == exported(library_path())


def test_bazel_library_does_not_need_libstdcxx(bazel_built: str) -> None:
    check_dependencies(bazel_built)


@pytest.mark.parametrize("kernel", KERNELS)
def test_bazel_library_is_bit_exact(bazel_built: str, conv_fc_model: bytes, kernel: str) -> None:
    layers, sparse = expected_sparse(conv_fc_model)
    assert (layers, sparse) == (3, 1)
    x = random_int8((4, 10, 9, 3), seed=21)
    delegate = KernelDelegate(kernel=kernel, library=bazel_built, nodes="all")
    assert delegate.library == bazel_built
    np.testing.assert_array_equal(run(conv_fc_model, x, REF, delegate), run(conv_fc_model, x, REF))
    check_counters(delegate.counters(), kernel, layers, sparse)
