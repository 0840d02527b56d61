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
    kernel_options: dict | None = None,
) -> dict:
    """Times and checks `model` in the default interpreter and with our kernels.

    Latency is timed at batch 1 on `x[:1]`, alternating the two interpreters for
    `rounds` rounds of `runs` invokes each, so both see the same machine load;
    the speedup is the median of the per-round ratios of medians.

    Outputs are compared on all of `x`, in two views. Like with like: our kernels
    with TFLite's reference kernels for the ops we leave, against the reference
    kernels alone; this is what "our kernels are bit-exact" means. As deployed: our
    kernels with XNNPACK for the ops we leave, against the reference and against the
    default interpreter (XNNPACK for every op it takes); XNNPACK rounds some int8 ops
    (MEAN, MUL, ...) differently from the reference, so this view can differ even
    though our kernels do not.

    Args:
        model: The `.tflite` bytes (int8 layers are what our kernels run).
        x: Float samples (quantized by `TFLiteModel` when the input is int8).
        rounds: Alternating timing rounds.
        runs: Timed invokes per interpreter per round.
        num_threads: Threads for every interpreter.
        kernel_options: Keyword arguments of our `KernelDelegate` (e.g.
            `{"nodes": "all"}` to claim every layer it can run, or `autotune`'s nodes);
            by default its cost model claims only the layers it expects to win.

    Returns:
        A dict with `default_ms`, `kernels_ms` (medians over rounds), `speedup`,
        `samples`, `isa`, `host` (what the default kernels use on this CPU), the
        delegate's `counters`, `nodes` (every layer it could run: claimed or not,
        kernel, expected speed-up; `KernelNode.to_dict()`), and the comparisons:

        - `identical_to_reference`: our kernels plus reference kernels for the rest
          give the reference outputs bit for bit (like with like);
        - `deployed_identical_to_reference`: our kernels plus XNNPACK for the rest do;
        - `default_identical_to_reference`: the default interpreter does;
        - `top1_agreement`: fraction of `x` whose top-1 is the same with our kernels
          (XNNPACK for the rest) as in the default interpreter;
        - `default_top1_agreement_with_reference`: the same fraction between the default
          interpreter and the reference kernels, for scale;
        - `max_abs_diff_vs_default`: in output units, deployed against default;
        - `reference_missing`: None, or why TFLite's reference kernels cannot run the
          file (an op version they lack, such as a DEPTHWISE_CONV_2D with 4-bit
          weights); the three `*_identical_to_reference` and the reference agreement
          are then None, and the rest is still measured.

    Raises:
        KernelsNotBuiltError: The kernel library was not built.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_test[:100], data.y_test[:100]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)], name="mlp")
        >>> int8_bytes = tfcompress.export_tflite(model, mode="int8", representative_data=x)
        >>> summary = tfcompress.compare_kernels(
        ...     int8_bytes, x, rounds=1, runs=10, kernel_options={"nodes": "all"})
        >>> summary["identical_to_reference"], summary["counters"]["nodes_claimed"]
        (True, 2)
        >>> sorted(summary)
        ['counters', 'default_identical_to_reference', 'default_ms',
         'default_top1_agreement_with_reference', 'deployed_identical_to_reference', 'host',
         'identical_to_reference', 'isa', 'kernels_ms', 'max_abs_diff_vs_default', 'nodes',
         'reference_missing', 'samples', 'speedup', 'top1_agreement']
    """
    if rounds < 1 or runs < 1:
        raise ValueError(
            f"`rounds` and `runs` must be >= 1. Received: rounds={rounds}, runs={runs}"
        )
    default = TFLiteModel(model, num_threads=num_threads)
    ours = TFLiteModel(
        model, num_threads=num_threads, use_tfcompress_kernels=True, kernel_options=kernel_options
    )
    missing = None
    try:
        reference = TFLiteModel(model, num_threads=num_threads, reference_kernels=True)
        ours_on_reference = TFLiteModel(
            model,
            num_threads=num_threads,
            reference_kernels=True,
            use_tfcompress_kernels=True,
            kernel_options=kernel_options,
        )
    except ValueError as error:  # "Didn't find op for builtin opcode ... version ..."
        if "find op" not in str(error):
            raise
        missing = str(error).split("\n")[0]
    default_ms, ours_ms, ratios = [], [], []
    for _ in range(rounds):
        d = default.latency(x[:1], runs=runs)["median_ms"]
        o = ours.latency(x[:1], runs=runs)["median_ms"]
        default_ms.append(d)
        ours_ms.append(o)
        ratios.append(d / o)
    y_default, y_ours = default.predict(x), ours.predict(x)

    def same(a, b):
        return None if missing else bool(np.array_equal(a, b))

    y_reference = y_ours_on_reference = None
    if missing is None:
        y_reference, y_ours_on_reference = reference.predict(x), ours_on_reference.predict(x)
    return {
        "default_ms": float(np.median(default_ms)),
        "kernels_ms": float(np.median(ours_ms)),
        "speedup": float(np.median(ratios)),
        "top1_agreement": float(np.mean(y_default.argmax(-1) == y_ours.argmax(-1))),
        "default_top1_agreement_with_reference": None
        if missing
        else float(np.mean(y_default.argmax(-1) == y_reference.argmax(-1))),
        "identical_to_reference": same(y_ours_on_reference, y_reference),
        "deployed_identical_to_reference": same(y_ours, y_reference),
        "default_identical_to_reference": same(y_default, y_reference),
        "reference_missing": missing,
        "max_abs_diff_vs_default": float(np.abs(y_ours - y_default).max()),
        "samples": len(x),
        "isa": ours.kernels.isa,
        "host": ours.kernels.host,
        "counters": ours.kernels.counters(),
        "nodes": [node.to_dict() for node in ours.kernels.nodes(claimed_only=False)],
    }


def format_comparison(summary: dict) -> str:
    """Human-readable lines for the result of `compare_kernels`: speed, then the two views
    of the outputs (like with like, and as deployed with XNNPACK for the other ops)."""
    c = summary["counters"]
    kinds = f"{c['sparse_nodes']} block-sparse, {c['dense_nodes']} dense"
    same = "identical" if summary["top1_agreement"] == 1.0 else "NOT identical"
    n = summary["samples"]
    speedup = summary["speedup"]
    change = f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"
    yes = {True: "yes", False: "NO"}
    left = ""
    if c["nodes_left"]:
        left = (
            f"; {c['nodes_left']} left to the default kernels, which the cost model expects "
            f"to be faster on this CPU ({summary['host']})"
        )
    lines = [
        f"Our int8 kernels ({summary['isa']}): {c['nodes_claimed']} "
        f"layer{'' if c['nodes_claimed'] == 1 else 's'} claimed ({kinds})"
        f"{left}.",
        f"latency at batch 1: default interpreter {summary['default_ms']:.3f} ms, "
        f"with our kernels {summary['kernels_ms']:.3f} ms ({change})",
        f"top-1 predictions on {n:,} test images: {same} "
        f"({summary['top1_agreement']:.1%} agree with the default interpreter; both run the "
        "other ops on XNNPACK)",
    ]
    missing = summary.get("reference_missing")
    if missing:
        lines.append(
            f"not compared with TFLite's reference kernels, which cannot run it: {missing}"
        )
        return "\n".join(lines)
    deployed = yes[summary["deployed_identical_to_reference"]]
    default = yes[summary["default_identical_to_reference"]]
    lines += [
        "outputs bit-identical to TFLite's reference kernels, our kernels with reference "
        f"kernels for the other ops: {yes[summary['identical_to_reference']]}",
        f"as deployed, with XNNPACK for the other ops: {deployed} "
        f"(default interpreter alone: {default}, its top-1 "
        f"{summary['default_top1_agreement_with_reference']:.1%} the reference's)",
    ]
    return "\n".join(lines)
