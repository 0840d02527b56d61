"""`compare_kernels`: one int8 `.tflite` with and without our kernels, side by side."""

from __future__ import annotations

import numpy as np

from tfcompress.export.interpreter import TFLiteModel


def compare_kernels(
    model: bytes,
    x: np.ndarray,
    rounds: int = 5,
    runs: int = 100,
    num_threads: int = 1,
) -> dict:
    """Times and checks `model` in the default interpreter and with our kernels.

    Latency is timed at batch 1 on `x[:1]`, alternating the two interpreters for
    `rounds` rounds of `runs` invokes each, so both see the same machine load;
    the speedup is the median of the per-round ratios of medians. Predictions are
    compared on all of `x`: top-1 against the default interpreter, and raw
    outputs against TFLite's reference kernels, which our kernels match bit for bit.

    Args:
        model: The `.tflite` bytes (int8 layers are what our kernels run).
        x: Float samples (quantized by `TFLiteModel` when the input is int8).
        rounds: Alternating timing rounds.
        runs: Timed invokes per interpreter per round.
        num_threads: Threads for both interpreters.

    Returns:
        A dict with `default_ms`, `kernels_ms` (medians over rounds), `speedup`,
        `top1_agreement` (fraction of `x`), `identical_to_reference` (bool),
        `max_abs_diff_vs_default` (in output units), `isa` and the delegate's
        `counters`.

    Raises:
        KernelsNotBuiltError: The kernel library was not built.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_test[:100], data.y_test[:100]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)], name="mlp")
        >>> int8_bytes = tfcompress.export_tflite(model, mode="int8", representative_data=x)
        >>> summary = tfcompress.compare_kernels(int8_bytes, x, rounds=1, runs=10)
        >>> summary["identical_to_reference"], summary["counters"]["nodes_claimed"]
        (True, 2)
        >>> sorted(summary)
        ['counters', 'default_ms', 'identical_to_reference', 'isa', 'kernels_ms',
         'max_abs_diff_vs_default', 'samples', 'speedup', 'top1_agreement']
    """
    if rounds < 1 or runs < 1:
        raise ValueError(
            f"`rounds` and `runs` must be >= 1. Received: rounds={rounds}, runs={runs}"
        )
    default = TFLiteModel(model, num_threads=num_threads)
    ours = TFLiteModel(model, num_threads=num_threads, use_tfcompress_kernels=True)
    reference = TFLiteModel(model, num_threads=num_threads, reference_kernels=True)
    default_ms, ours_ms, ratios = [], [], []
    for _ in range(rounds):
        d = default.latency(x[:1], runs=runs)["median_ms"]
        o = ours.latency(x[:1], runs=runs)["median_ms"]
        default_ms.append(d)
        ours_ms.append(o)
        ratios.append(d / o)
    y_default, y_ours = default.predict(x), ours.predict(x)
    y_reference = reference.predict(x)
    return {
        "default_ms": float(np.median(default_ms)),
        "kernels_ms": float(np.median(ours_ms)),
        "speedup": float(np.median(ratios)),
        "top1_agreement": float(np.mean(y_default.argmax(-1) == y_ours.argmax(-1))),
        "identical_to_reference": bool(np.array_equal(y_ours, y_reference)),
        "max_abs_diff_vs_default": float(np.abs(y_ours - y_default).max()),
        "samples": len(x),
        "isa": ours.kernels.isa,
        "counters": ours.kernels.counters(),
    }


def format_comparison(summary: dict) -> str:
    """Human-readable lines for the result of `compare_kernels`."""
    c = summary["counters"]
    kinds = f"{c['sparse_nodes']} block-sparse, {c['dense_nodes']} dense"
    same = "identical" if summary["top1_agreement"] == 1.0 else "NOT identical"
    n = summary["samples"]
    speedup = summary["speedup"]
    change = f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"
    return "\n".join(
        [
            f"Our int8 kernels ({summary['isa']}): {c['nodes_claimed']} layers claimed ({kinds}).",
            f"latency at batch 1: default interpreter {summary['default_ms']:.3f} ms, "
            f"with our kernels {summary['kernels_ms']:.3f} ms ({change})",
            f"top-1 predictions on {n:,} test images: {same} "
            f"({summary['top1_agreement']:.1%} agree with the default interpreter)",
            "outputs bit-identical to TFLite's reference kernels: "
            + ("yes" if summary["identical_to_reference"] else "NO"),
        ]
    )
