"""`autotune`: which nodes our kernels should claim, timed in the real interpreter."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from tfcompress.kernels.delegate import KernelDelegate
from tfcompress.runtime import quantize_input, runtime

# Measures configurations side by side: each a list of node indices to claim; returns
# one latency (any unit) per configuration.
Measure = Callable[[Sequence[Sequence[int]]], Sequence[float]]


def autotune(
    model: bytes | str | os.PathLike,
    sample_input: np.ndarray,
    kernel: str = "auto",
    num_threads: int = 1,
    rounds: int = 5,
    invokes: int = 50,
    min_speedup: float = 1.03,
    backend: str = "auto",
    measure: Measure | None = None,
) -> list[int]:
    """The nodes worth claiming with our kernels, as measured on this machine.

    Lists the int8 nodes our delegate can run, then times the model in the
    interpreter as deployed (our kernels for the claimed nodes, the default
    kernels, XNNPACK, for the rest) with none of them claimed, with each one
    alone, and with every one. Nodes that alone make the model at least
    `min_speedup` faster form the candidate set, which is timed against none, all
    and the nodes the cost model claims (`KernelDelegate(kernel=kernel)`: in a model of many
    small nodes each may gain too little alone to pass the margin, yet together they pay);
    the fastest of these is returned if it beats none by `min_speedup`, else no node (a tie
    goes to the interpreter's own kernels). Configurations are timed
    interleaved, `rounds` times each in rotating order, and compared by their
    median, so a shared, noisy machine biases none of them.

    Args:
        model: `.tflite` bytes or path (int8 FULLY_CONNECTED / CONV_2D nodes).
        sample_input: One input batch as the model takes it (float; quantized with
            the input tensor's parameters when the input is int8).
        kernel: The delegate's kernel choice (`KernelDelegate(kernel=...)`).
        num_threads: Interpreter and delegate threads.
        rounds: Interleaved timing rounds (odd numbers make the median one round's).
        invokes: `invoke()` calls timed per configuration and round (after a warm-up).
        min_speedup: The gain a node must bring alone to be kept.
        backend: The runtime (`"auto"`, `"litert"` or `"tf"`).
        measure: Replaces the timing (for tests): called with configurations (lists
            of node indices), returns a latency for each.

    Returns:
        Sorted node indices (JSON-serialisable) for `KernelDelegate(nodes=...)` or
        `TFLiteModel(..., use_tfcompress_kernels=True, kernel_options={"nodes": ...})`.

    Example:
        >>> x = tfcompress.datasets.load_digits().x_test[:50]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        >>> content = tfcompress.export_tflite(model, mode="int8", representative_data=x)
        >>> nodes = tfcompress.kernels.autotune(content, x[:1], rounds=1, invokes=5)
        >>> set(nodes) <= {node.node for node in tfcompress.kernels.candidates(content)}
        True
    """
    if rounds < 1 or invokes < 1:
        raise ValueError(
            f"`rounds` and `invokes` must be >= 1. Received: rounds={rounds}, invokes={invokes}"
        )
    if not min_speedup >= 1.0:
        raise ValueError(f"`min_speedup` must be >= 1. Received: min_speedup={min_speedup!r}")
    content = _content(model)
    nodes = [node.node for node in candidates(content, kernel=kernel, backend=backend)]
    if not nodes:
        return []
    if measure is None:
        timer = _Timer(content, np.asarray(sample_input), kernel, num_threads, backend)

        def measure(configs: Sequence[Sequence[int]]) -> list[float]:
            return timer.interleaved(configs, rounds, invokes)

    singles = [[node] for node in nodes]
    none, *alone = measure([[], *singles])
    chosen = [node for node, t in zip(nodes, alone) if none / t >= min_speedup]
    finalists: list[list[int]] = []
    for config in ([], chosen, claimed_by_cost_model(content, kernel, backend), nodes):
        if config not in finalists:
            finalists.append(config)
    none, *times = measure(finalists)
    # The fastest set that beats none by the margin; none when no set does (noise ties go
    # to the interpreter's own kernels).
    paying = [(t, i) for i, t in enumerate(times, start=1) if none / t >= min_speedup]
    return sorted(finalists[min(paying)[1]]) if paying else []


def candidates(
    model: bytes | str | os.PathLike, kernel: str = "auto", backend: str = "auto"
) -> list:
    """The nodes of `model` our delegate can run (`KernelNode`s), claimed or not."""
    delegate = KernelDelegate(kernel=kernel, backend=backend, nodes=[])
    _interpreter(_content(model), 1, runtime(backend), [delegate])
    return delegate.nodes(claimed_only=False)


def claimed_by_cost_model(
    model: bytes | str | os.PathLike, kernel: str = "auto", backend: str = "auto"
) -> list[int]:
    """Sorted indices of the nodes our delegate claims by its cost model (`nodes="auto"`)."""
    delegate = KernelDelegate(kernel=kernel, backend=backend)
    _interpreter(_content(model), 1, runtime(backend), [delegate])
    return sorted(node.node for node in delegate.nodes())


def _content(model: bytes | str | os.PathLike) -> bytes:
    if isinstance(model, bytes):
        return model
    with open(model, "rb") as f:
        return f.read()


def _interpreter(content: bytes, num_threads: int, chosen, delegates: list):
    interpreter = chosen.interpreter(
        model_content=content, num_threads=num_threads, experimental_delegates=delegates
    )
    interpreter.allocate_tensors()
    return interpreter


class _Timer:
    """Times one model with different claimed node sets on the same input."""

    def __init__(self, content: bytes, x: np.ndarray, kernel: str, num_threads: int, backend):
        self.content, self.kernel, self.num_threads = content, kernel, num_threads
        self.runtime = runtime(backend)
        self.backend = backend
        probe = _interpreter(content, 1, self.runtime, [])
        detail = probe.get_input_details()[0]
        self.x = quantize_input(x, detail)
        self.input_index = detail["index"]

    def _ready(self, nodes: Sequence[int]):
        delegate = KernelDelegate(
            kernel=self.kernel, num_threads=self.num_threads, backend=self.backend, nodes=nodes
        )
        interpreter = self.runtime.interpreter(
            model_content=self.content,
            num_threads=self.num_threads,
            experimental_delegates=[delegate],
        )
        interpreter.resize_tensor_input(self.input_index, list(self.x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(self.input_index, self.x)
        return interpreter, delegate

    def interleaved(self, configs: Sequence[Sequence[int]], rounds: int, invokes: int):
        ready = [self._ready(nodes) for nodes in configs]
        medians = np.empty((rounds, len(configs)))
        for r in range(rounds):
            order = np.roll(np.arange(len(configs)), r)
            for i in order:
                invoke = ready[i][0].invoke
                for _ in range(max(1, invokes // 5)):
                    invoke()
                times = np.empty(invokes)
                for j in range(invokes):
                    start = time.perf_counter()
                    invoke()
                    times[j] = time.perf_counter() - start
                medians[r, i] = np.median(times)
        return list(np.median(medians, axis=0))
