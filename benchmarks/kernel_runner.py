"""Interleaved timing of one model in several interpreters, for `benchmarks/kernels.py`.

Variants, each a `TFLiteModel`: ours (`KernelDelegate` applied before the default XNNPACK
delegate: as deployed, with its cost model choosing the layers; on every layer it can run;
with the dense kernel forced; on the layers `autotune` chose), the default interpreter
(XNNPACK) and the builtin kernels; plus TFLite's reference kernels, not timed, as the
ground truth.
"""

from __future__ import annotations

import contextlib

import numpy as np

from tfcompress.export import TFLiteModel

# name -> TFLiteModel options. Ours keep the default resolver: our delegate is applied
# first and XNNPACK (applied lazily) takes whatever we leave.
VARIANTS = {
    "ours": {"use_tfcompress_kernels": True, "kernel_options": {"kernel": "auto"}},
    "ours_all": {
        "use_tfcompress_kernels": True,
        "kernel_options": {"kernel": "auto", "nodes": "all"},
    },
    "ours_dense": {"use_tfcompress_kernels": True, "kernel_options": {"kernel": "dense"}},
    "xnnpack": {},
    "builtin": {"use_xnnpack": False},
}
# Not timed: TFLite's reference kernels, the ground truth of the bit-exactness checks.
CHECKS = {"reference": {"reference_kernels": True}}
OURS = ("ours", "ours_all", "ours_dense", "ours_tuned")
LABELS = {
    "ours": "ours auto",
    "ours_all": "ours all layers",
    "ours_tuned": "ours autotuned",
    "ours_dense": "ours dense",
    "xnnpack": "XNNPACK",
    "builtin": "builtin",
    "reference": "reference",
}
CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "asimddp",
)


def cpu_flags() -> dict[str, bool]:
    """The /proc/cpuinfo flags that decide which kernel path runs."""
    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    return {flag: flag in flags for flag in CPU_FLAGS}


def interpreter(content: bytes, variant: str) -> TFLiteModel:
    """`content` in the interpreter of `variant` (LiteRT, one thread)."""
    return TFLiteModel(content, num_threads=1, backend="litert", **{**VARIANTS, **CHECKS}[variant])


def tuned_interpreter(content: bytes, nodes: list[int]) -> TFLiteModel:
    """`content` with our kernels on exactly `nodes` (`autotune`'s choice)."""
    options = {"kernel": "auto", "nodes": nodes}
    return TFLiteModel(
        content,
        num_threads=1,
        backend="litert",
        use_tfcompress_kernels=True,
        kernel_options=options,
    )


def as_float(model: TFLiteModel, q: np.ndarray) -> np.ndarray:
    """The float input that `model` quantizes to the int8 values `q` exactly."""
    scale, zero_point = model.input_quantization
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def raw_outputs(model: TFLiteModel, x: np.ndarray) -> np.ndarray:
    """The stored (int8) outputs of every sample of `x`, one invoke per sample."""
    return np.concatenate([model.run_batch(x[i : i + 1], raw=True) for i in range(len(x))])


def nodes(model: TFLiteModel) -> list[dict]:
    """Every node our delegate could run: node, op, weights, block density, kernel, ISA,
    whether it claimed it and the cost model's expected speed-up."""
    return [node.to_dict() for node in model.kernels.nodes(claimed_only=False)]


def interleaved(
    models: dict[str, TFLiteModel], x: np.ndarray, rounds: int, invokes: int, warmup: int
) -> dict:
    """Per variant, the median `invoke()` time (us) on `x` of each round, the variants
    interleaved (the order rotated every round)."""
    for model in models.values():
        model.latency(x, warmup=warmup, runs=1)
    names = list(models)
    medians: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            timing = models[name].latency(x, warmup=0, runs=invokes)
            medians[name].append(timing["median_ms"] * 1e3)
    return medians


def summarize(medians: dict[str, list[float]]) -> dict:
    """Median and min over the rounds per variant; speed-ups from the per-round ratios."""
    out = {"latency_us": {}, "speedups": {}}
    for name, values in medians.items():
        out["latency_us"][name] = {
            "median": float(np.median(values)),
            "min": float(np.min(values)),
            "rounds": values,
        }
    for ours in OURS:
        if ours not in medians:
            continue
        for ref in ("xnnpack", "builtin"):
            ratios = np.asarray(medians[ref]) / np.asarray(medians[ours])
            out["speedups"][f"{ours}_vs_{ref}"] = {
                "median": float(np.median(ratios)),
                "min": float(ratios.min()),
                "max": float(ratios.max()),
            }
    return out
