"""Helpers for the delegate tests: tiny int8 models and interpreters with and without us."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from tfcompress.kernels import KernelDelegate

REF = litert.OpResolverType.BUILTIN_REF
XNNPACK = litert.OpResolverType.AUTO
BUILTIN = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def host_isas() -> list[str]:
    """Every kernel path this machine runs (portable always)."""
    from tfcompress.kernels import best_isa

    best = best_isa()
    return {"avx512vnni": ["portable", "avx2", "avx512vnni"], "avx2": ["portable", "avx2"]}.get(
        best, ["portable", best] if best != "portable" else ["portable"]
    )


def int8_model(model: keras.Model, samples: np.ndarray, per_channel: bool = True) -> bytes:
    """Full-integer `.tflite` with int8 input and output, calibrated on `samples`."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples[:64])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = not per_channel
    return converter.convert()


def random_int8(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


def run(
    content: bytes,
    x: np.ndarray,
    resolver=XNNPACK,
    delegate: KernelDelegate | None = None,
    backend: str = "litert",
) -> np.ndarray:
    """Output of one invoke on `x` (its first dimension sets the batch)."""
    module = litert if backend == "litert" else tf.lite
    if backend != "litert":
        resolver = getattr(tf.lite.experimental.OpResolverType, resolver.name)
    interpreter = module.Interpreter(
        model_content=content,
        experimental_delegates=[delegate.delegate] if delegate else None,
        experimental_op_resolver_type=resolver,
    )
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def bazel_library() -> str | None:
    """The Bazel-built library, when `bazel build //kernels:tfcompress_kernels` has run."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "bazel-bin", "kernels", "libtfcompress_kernels.so")
    return path if os.path.isfile(path) else None
