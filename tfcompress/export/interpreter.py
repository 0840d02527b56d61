"""`TFLiteModel`: run, evaluate and time a `.tflite` in the LiteRT interpreter."""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np

from tfcompress.encryption import Key, decrypt_model, is_encrypted
from tfcompress.export.flatbuffer import custom_op_codes
from tfcompress.kernels import KernelDelegate
from tfcompress.runtime import Runtime, quantize_input, runtime
from tfcompress.utils.validation import check_samples


class TFLiteModel:
    """A `.tflite` model in an interpreter, with batching and int8 I/O handled.

    Prefers `ai_edge_litert.interpreter` and falls back to `tf.lite.Interpreter`.
    Inputs and outputs are float: a quantized input is quantized with the
    tensor's scale and zero point, a quantized output dequantized, so callers
    compare it directly with the Keras model.

    Args:
        model: The `.tflite` bytes or a path to a `.tflite` file.
        num_threads: Interpreter threads (default 1: on small shared machines one
            thread is the steadiest, and latency is reported per thread count).
        backend: `"auto"` (LiteRT if installed, else TF), `"litert"` or `"tf"`.
        use_xnnpack: Keep the default XNNPACK delegate (True) or run the builtin
            kernels only (False).
        reference_kernels: Run TFLite's reference kernels (ground truth for
            bit-exactness checks); implies no XNNPACK.
        use_tfcompress_kernels: Append a `KernelDelegate` to `delegates`: int8
            FULLY_CONNECTED and CONV_2D layers run with tfcompress's own kernels,
            which make 16x4 block-pruned layers faster; other ops keep the
            interpreter's kernels.
        kernel_options: Keyword arguments of that `KernelDelegate` (`kernel`,
            `verbose`, `isa`, `library`); its `num_threads` is `num_threads`.
        delegates: Interpreter delegates, applied in order (before the default
            XNNPACK one, which takes the nodes they leave): delegate objects of
            this runtime's `load_delegate`, or `tfcompress.kernels.KernelDelegate`s
            (loaded by the same runtime).
        key: For a model from `tfcompress.encrypt_model`: its key (bytes,
            `"env:NAME"` or a key file, see `tfcompress.encryption.load_key`). The
            model is decrypted in memory; nothing is written to disk.

    Attributes:
        kernels: The first `KernelDelegate` among the delegates (its `counters()`
            and `nodes()` say what it ran), or None.
        delegates: The delegates applied. Our `KernelDelegate`s step aside (with a
            warning, claiming nothing) for a model they would break that runs without
            them: one whose custom ops only a delegate such as XNNPACK provides.
        input_quantization: `(scale, zero_point)` of the input tensor, `(0.0, 0)`
            when it is not quantized.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_test[:100], data.y_test[:100]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)], name="mlp")
        >>> runner = tfcompress.TFLiteModel(
        ...     tfcompress.export_tflite(model, mode="int8", representative_data=x))
        >>> runner.predict(x).shape
        (100, 10)
        >>> 0 <= runner.evaluate(x, y) <= 1
        True
        >>> runner.latency(x[:1])["median_ms"] > 0
        True
    """

    def __init__(
        self,
        model: bytes | str | os.PathLike,
        num_threads: int = 1,
        backend: str = "auto",
        use_xnnpack: bool = True,
        reference_kernels: bool = False,
        use_tfcompress_kernels: bool = False,
        kernel_options: dict | None = None,
        delegates: list | tuple = (),
        key: Key | None = None,
    ):
        chosen = runtime(backend)
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(
                f"`num_threads` must be a positive integer. Received: num_threads={num_threads!r}"
            )
        if isinstance(model, (bytes, bytearray)):
            if not model:
                raise ValueError(
                    "`model` is empty: expected the bytes of a `.tflite` model or a path to "
                    "one. Received: model=b''"
                )
            self.content = bytes(model)
        else:
            if not os.path.isfile(model):
                raise FileNotFoundError(f"No `.tflite` file at `model`={os.fspath(model)!r}")
            with open(model, "rb") as f:
                self.content = f.read()
        if is_encrypted(self.content):
            if key is None:
                raise ValueError(
                    "`model` is encrypted by tfcompress (`encrypt_model`): pass its `key`."
                )
            self.content = decrypt_model(self.content, key)  # in memory only
        elif key is not None:
            raise ValueError("`key` was given but `model` is not an encrypted model.")
        if reference_kernels:
            resolver_type = chosen.resolver.BUILTIN_REF
        elif use_xnnpack:
            resolver_type = chosen.resolver.AUTO
        else:
            resolver_type = chosen.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.backend = chosen.interpreter.__module__.split(".")[0]
        self.num_threads = num_threads
        if kernel_options is not None and not use_tfcompress_kernels:
            raise ValueError(
                "`kernel_options` needs `use_tfcompress_kernels=True`. "
                f"Received: kernel_options={kernel_options!r}"
            )
        self.delegates = list(delegates)
        fixed = sorted({"num_threads", "backend"} & set(kernel_options or {}))
        if fixed:
            raise ValueError(
                f"`kernel_options` must not hold {fixed}: the delegate takes this model's "
                f"`num_threads` and runtime. Received: kernel_options={kernel_options!r}"
            )
        if use_tfcompress_kernels:
            options = {"num_threads": num_threads, "backend": chosen.name, **(kernel_options or {})}
            self.delegates.append(KernelDelegate(**options))
        for i, delegate in enumerate(self.delegates):
            if isinstance(delegate, KernelDelegate) and delegate.backend != chosen.name:
                raise ValueError(
                    f"`delegates[{i}]` must be loaded by the runtime of this model "
                    f"({chosen.name!r}): make it with KernelDelegate(backend={chosen.name!r}). "
                    f"Received: delegates[{i}].backend={delegate.backend!r}"
                )
        ours = [d for d in self.delegates if isinstance(d, KernelDelegate)]
        self.kernels = ours[0] if ours else None
        unresolved = _delegate_only_custom_ops(chosen, self.content) if ours else []
        if unresolved:
            warnings.warn(
                f"The tfcompress kernels step aside for this model: its custom ops {unresolved} "
                "are provided by a delegate (XNNPACK), not by the interpreter's kernels, and the "
                "kernel delegate has every node's own kernel propagate shapes, which such an op "
                "cannot. The model runs as without our kernels, which claim no node.",
                stacklevel=2,
            )
            self.delegates = [d for d in self.delegates if not isinstance(d, KernelDelegate)]
        self._interpreter = _allocated_interpreter(
            chosen, self.content, num_threads, resolver_type, self.delegates
        )
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        self.input_shape = tuple(int(d) for d in self._input["shape_signature"][1:])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = tuple(self._input["quantization"])
        self.output_dtype = np.dtype(self._output["dtype"])
        self._warned: set[str] = set()  # input warnings given once per model

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = [batch, *self._input["shape"][1:]]
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            self._interpreter.allocate_tensors()
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
            self._batch = batch

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=4)

    def _check_input(self, x: np.ndarray) -> None:
        """Warns (once each) about NaN/inf inputs and about integer arrays that look like
        unscaled images fed to a model with real-valued input."""
        x = np.asarray(x)
        if x.dtype.kind in "fc" and not np.isfinite(x).all():
            self._warn_once(
                "nan",
                "`x` holds NaN or inf values; the interpreter still returns numbers for "
                f"them, which mean nothing. Received: x with "
                f"{int(np.count_nonzero(~np.isfinite(x)))} non-finite value(s)",
            )
        real_input = self.input_dtype.kind == "f" or bool(self.input_quantization[0])
        if x.dtype.kind in "iu" and real_input and x.size and x.max() > 1:
            self._warn_once(
                "unscaled",
                f"`x` is an integer array (dtype {x.dtype}, values up to {x.max()}) and the "
                "model's input is real-valued: it is used as is. If these are image pixels, "
                "scale them as in training (e.g. x / 255).",
            )

    def _dequantize_output(self, y: np.ndarray) -> np.ndarray:
        scale, zero_point = self._output["quantization"]
        if self.output_dtype.kind not in "iu" or not scale:
            return y.astype("float32")
        return ((y.astype("float32") - zero_point) * scale).astype("float32")

    def run_batch(self, x: np.ndarray, raw: bool = False) -> np.ndarray:
        """Runs one batch; `raw=True` returns the output tensor as stored (e.g. int8)."""
        self._check_input(x)
        self._resize(len(x))
        self._interpreter.set_tensor(self._input["index"], quantize_input(x, self._input))
        self._interpreter.invoke()
        y = self._interpreter.get_tensor(self._output["index"])
        return y.copy() if raw else self._dequantize_output(y)

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Float outputs for every sample of `x`, run `batch_size` at a time."""
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
        x = check_samples(x, self.input_shape, "x", "this .tflite model")
        outputs = [self.run_batch(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(outputs, axis=0)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 64) -> float:
        """Top-1 accuracy of the model on `(x, y)` with integer labels `y`."""
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(
                f"`x` and `y` differ in length. Received: {len(x)} samples and {len(y)} labels"
            )
        predictions = self.predict(x, batch_size).argmax(axis=-1)
        return float(np.mean(predictions == y.reshape(predictions.shape)))

    def latency(self, x: np.ndarray, warmup: int = 10, runs: int = 100) -> dict[str, float]:
        """Times `invoke()` on the batch `x` (typically one sample).

        Returns:
            `{"median_ms", "p90_ms", "mean_ms", "min_ms", "runs", "batch", "num_threads"}`.
        """
        if warmup < 0 or runs < 1:
            raise ValueError(
                f"`warmup` must be >= 0 and `runs` >= 1. Received: warmup={warmup}, runs={runs}"
            )
        x = check_samples(x, self.input_shape, "x", "this .tflite model")
        self._resize(len(x))
        self._interpreter.set_tensor(self._input["index"], quantize_input(x, self._input))
        invoke, clock = self._interpreter.invoke, time.perf_counter
        for _ in range(warmup):
            invoke()
        times = np.empty(runs)
        for i in range(runs):
            start = clock()
            invoke()
            times[i] = clock() - start
        times *= 1e3
        return {
            "median_ms": float(np.median(times)),
            "p90_ms": float(np.percentile(times, 90)),
            "mean_ms": float(times.mean()),
            "min_ms": float(times.min()),
            "runs": runs,
            "batch": len(x),
            "num_threads": self.num_threads,
        }


def _allocated_interpreter(
    chosen: Runtime, content: bytes, num_threads: int, resolver_type: Any, delegates: list
) -> Any:
    """An interpreter of `chosen` on `content` with `delegates` applied, tensors allocated."""
    interpreter = chosen.interpreter(
        model_content=content,
        num_threads=num_threads,
        experimental_op_resolver_type=resolver_type,
        experimental_delegates=delegates or None,
    )
    interpreter.allocate_tensors()
    return interpreter


def _delegate_only_custom_ops(chosen: Runtime, content: bytes) -> list[str]:
    """The custom ops of `content` when the interpreter's own kernels leave some of them
    unresolved (only a delegate, such as XNNPACK for `Convolution2DTransposeBias`, runs
    them), else `[]`. Models without custom ops cost only a read of their operator codes."""
    custom = custom_op_codes(content)
    if not custom:
        return []
    try:
        _allocated_interpreter(
            chosen, content, 1, chosen.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES, []
        )
    except RuntimeError:
        return custom
    return []
