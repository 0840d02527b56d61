"""Interleaved timing of one model in several interpreters, for `benchmarks/kernels.py`.

Variants: ours (`KernelDelegate`, auto or dense kernels, applied before the
default XNNPACK delegate), the default interpreter (XNNPACK) and the builtin
kernels; plus TFLite's reference kernels, not timed, as the ground truth.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time

import numpy as np
from ai_edge_litert import interpreter as litert

from tfcompress.kernels import KernelDelegate

AUTO = litert.OpResolverType.AUTO
BUILTIN = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
# name -> (our kernel option or None, resolver). Ours keep the default resolver: our
# delegate is applied first and XNNPACK (applied lazily) takes whatever we leave.
VARIANTS = {
    "ours": ("auto", AUTO),
    "ours_dense": ("dense", AUTO),
    "xnnpack": (None, AUTO),
    "builtin": (None, BUILTIN),
}
# Not timed: TFLite's reference kernels, the ground truth of the bit-exactness checks.
CHECKS = {"reference": (None, litert.OpResolverType.BUILTIN_REF)}
LABELS = {
    "ours": "ours auto",
    "ours_dense": "ours dense",
    "xnnpack": "XNNPACK",
    "builtin": "builtin",
    "reference": "reference",
}
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "asimddp")
NODE_LINE = re.compile(
    r"node (\d+): (\w+) (\d+)x(\d+) block density ([\d.]+) -> (\w+)\s*(\w*)"
)  # fmt: skip


# --------------------------------------------------------------------------- machine


def cpu_flags() -> dict[str, bool]:
    """The /proc/cpuinfo flags that decide which kernel path runs."""
    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    return {flag: flag in flags for flag in CPU_FLAGS}


@contextlib.contextmanager
def delegate_log(lines: list[str]):
    """Collects the delegate's `tfcompress kernels:` lines from stderr (file descriptor 2, where
    the C++ library writes); every other line is passed on to stderr."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if line.startswith("tfcompress kernels:"):
                    lines.append(line)
                elif line.strip():
                    print(line, file=sys.stderr)


# --------------------------------------------------------------------------- interpreters


class Runner:
    """One interpreter of one variant, resized to `input_shape` and ready to invoke."""

    def __init__(self, content: bytes, variant: str, input_shape: tuple[int, ...]):
        kernel, resolver = {**VARIANTS, **CHECKS}[variant]
        self.variant = variant
        self.log: list[str] = []
        self.kernels = None
        with delegate_log(self.log):
            if kernel is not None:
                self.kernels = KernelDelegate(
                    kernel=kernel, num_threads=1, verbose=True, backend="litert"
                )
            self.interpreter = litert.Interpreter(
                model_content=content,
                num_threads=1,
                experimental_op_resolver_type=resolver,
                experimental_delegates=[self.kernels.delegate] if self.kernels else None,
            )
            detail = self.interpreter.get_input_details()[0]
            self.input_index = detail["index"]
            if tuple(detail["shape"]) != tuple(input_shape):
                self.interpreter.resize_tensor_input(self.input_index, list(input_shape))
            self.interpreter.allocate_tensors()
        self.output_index = self.interpreter.get_output_details()[0]["index"]

    def run(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).copy()

    def seconds(self, n: int) -> np.ndarray:
        """Wall time of each of `n` `invoke()` calls on the input already set."""
        invoke, clock = self.interpreter.invoke, time.perf_counter
        out = np.empty(n)
        for i in range(n):
            start = clock()
            invoke()
            out[i] = clock() - start
        return out

    def nodes(self) -> list[dict]:
        """Our delegate's per-node lines (verbose): node, op, weights, block density, kernel."""
        out = []
        for line in self.log:
            match = NODE_LINE.search(line)
            if match:
                node, op, n, k, density, kernel, isa = match.groups()
                out.append({"node": int(node), "op": op, "n": int(n), "k": int(k),
                            "block_density": float(density), "kernel": kernel,
                            "isa": isa or None})  # fmt: skip
        return out


def interleaved(runners: dict[str, Runner], rounds: int, invokes: int, warmup: int) -> dict:
    """Per variant, the median `invoke()` time (us) of each round, the variants interleaved."""
    for runner in runners.values():
        runner.seconds(warmup)
    names = list(runners)
    medians: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            medians[name].append(float(np.median(runners[name].seconds(invokes))) * 1e6)
    return medians


def summarize(medians: dict[str, list[float]]) -> dict:
    """Median and min over the rounds per variant; speed-ups from the per-round ratios."""
    out = {"latency_us": {}, "speedups": {}}
    for name, values in medians.items():
        out["latency_us"][name] = {"median": float(np.median(values)),
                                   "min": float(np.min(values)), "rounds": values}  # fmt: skip
    for ours in ("ours", "ours_dense"):
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
