"""Where our int8 convs win, by shape: the measurements behind the conv cost model.

Two measurements, one thread, on this CPU (`tfcompress.kernels.host_kind()`):

* Conv shapes: one-conv full-int8 `.tflite` models (int8 I/O, ReLU fused) at the 1x1 conv
  shapes of MobileNetV2 (alpha 0.35 and 1.0, 96x96 input), the 1x1 layers of
  `benchmarks/kernels.py` and a few 3x3 convs (the small CNN's, MobileNetV2's first), dense
  and with 80%/90% of their 16x4 weight blocks zeroed; each timed with our delegate claiming
  its node and with the default interpreter (XNNPACK). Then a least-squares fit (relative
  error) of both times to per-output, per-multiply-add, per-input-byte and per-im2col-tap
  costs: the constants of `kConvVnniOnVnni` in kernels/src/cost_model.cc.
* Hand-offs: a chain of 40 identical 1x1 convs timed with none, all, every other and every
  fourth node claimed: what leaving and re-entering our partition costs beyond the nodes'
  own times.

Times are the thread CPU time of `invoke()` (robust to other jobs on a shared machine),
median over interleaved rounds of the mean of N calls.

Run from the repository root: python -m benchmarks.kernel_shapes [--rounds R] [--invokes N]
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

import benchmarks.harness as harness
from benchmarks.kernel_models import int8_tflite
from tfcompress.kernels import KernelDelegate, candidates, host_kind
from tfcompress.runtime import runtime

# (height = width, input channels, output channels, kernel size, stride)
POINTWISE = [(48, 8, 48), (24, 8, 48), (24, 48, 8), (12, 16, 96), (12, 96, 16), (6, 24, 144),
             (6, 144, 24), (6, 32, 192), (6, 192, 32), (3, 56, 336), (3, 336, 56), (3, 112, 1280),
             (48, 16, 96), (24, 24, 144), (24, 144, 24), (12, 32, 192), (12, 192, 32),
             (6, 64, 384), (6, 384, 64), (6, 96, 576), (6, 576, 96), (3, 160, 960),
             (3, 960, 160), (3, 320, 1280), (28, 128, 128), (14, 256, 256)]  # fmt: skip
SHAPES = [(*s, 1, 1) for s in POINTWISE] + [
    (26, 32, 64, 3, 1),
    (30, 64, 64, 3, 1),
    (96, 1, 16, 3, 2),
    (96, 1, 32, 3, 2),
    (14, 32, 32, 3, 1),
]
DENSITIES = (1.0, 0.2, 0.1)
CHAIN = 40


def conv_model(hw: int, c_in: int, c_out: int, size: int, stride: int, density: float, seed: int):
    """A one-conv int8 model with `density` of its 16x4 blocks kept (at least one)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((hw, hw, c_in))
    padding = "same" if stride > 1 else "valid"
    layer = keras.layers.Conv2D(c_out, size, strides=stride, padding=padding, activation="relu")
    model = keras.Model(inputs, layer(inputs))
    kernel, bias = layer.get_weights()
    if density < 1:
        k = size * size * c_in
        keep = rng.random((-(-k // 4), -(-c_out // 16))) < density
        keep[0, 0] = True
        mask = np.repeat(np.repeat(keep, 4, 0), 16, 1)[:k, :c_out]
        layer.set_weights([kernel * mask.reshape(kernel.shape), bias])
    return int8_tflite(model, rng.normal(size=(32, hw, hw, c_in)).astype("float32"))


def cpu_times(content: bytes, configs: list[list[int]], rounds: int, invokes: int) -> np.ndarray:
    """Thread CPU us per `invoke()` with our delegate claiming each node set of `configs`."""
    chosen = runtime("litert")
    ready = []
    for nodes in configs:
        interpreter = chosen.interpreter(
            model_content=content,
            num_threads=1,
            experimental_delegates=[KernelDelegate(nodes=nodes)],
        )
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        shape = detail["shape"]
        x = np.random.default_rng(0).integers(-128, 128, size=shape, dtype=np.int8)
        interpreter.set_tensor(detail["index"], x)
        ready.append(interpreter)
    out = np.empty((rounds, len(configs)))
    for r in range(rounds):
        for i in np.roll(np.arange(len(configs)), r):
            invoke = ready[i].invoke
            for _ in range(3):
                invoke()
            start = time.thread_time_ns()
            for _ in range(invokes):
                invoke()
            out[r, i] = (time.thread_time_ns() - start) / invokes / 1e3
    return np.median(out, axis=0)


def measure_shapes(args) -> list[dict]:
    records = []
    for i, (hw, c_in, c_out, size, stride) in enumerate(SHAPES):
        for density in DENSITIES:
            content = conv_model(hw, c_in, c_out, size, stride, density, seed=i)
            node = candidates(content)[0]
            xnn, ours = cpu_times(content, [[], [node.node]], args.rounds, args.invokes)
            record = {
                "rows": node.rows,
                "n": node.n,
                "k": node.k,
                "taps": size * size if (size, stride) != (1, 1) else 0,
                "block_density": node.block_density,
                "kernel": node.kernel,
                "xnnpack_us": float(xnn),
                "ours_us": float(ours),
            }
            records.append(record)
            print(
                f"conv {size}x{size}/{stride} rows {node.rows} n {node.n} k {node.k} density "
                f"{node.block_density:.2f}: XNNPACK {xnn:.2f} us, ours {ours:.2f} us "
                f"({xnn / ours:.2f}x)",
                flush=True,
            )
    return records


def features(r: dict) -> tuple[list[float], list[float]]:
    """(ours, XNNPACK) cost features of one record; see kConvVnniOnVnni."""
    outputs = r["rows"] * r["n"]
    density = r["block_density"] if r["kernel"] == "sparse" else 1.0
    issued = r["rows"] * -(-r["n"] // 16) * 16 * -(-r["k"] // 4) * 4 * density
    ours = [1, outputs, issued, r["rows"] * r["k"], r["rows"] * r["taps"]]
    return ours, [1, outputs, outputs * r["k"]]


def fit(records: list[dict]) -> dict:
    """Least squares on relative error; the constant term absorbs the invoke() floor."""
    out = {}
    for side, column, names in (
        (0, "ours_us", ["node_ns", "output_ns", "mac_ns", "input_byte_ns", "im2col_tap_ns"]),
        (1, "xnnpack_us", ["node_ns", "output_ns", "mac_ns"]),
    ):
        a = np.array([features(r)[side] for r in records], dtype=float)
        t = np.array([r[column] for r in records]) * 1e3
        coef = np.linalg.lstsq(a / t[:, None], np.ones(len(t)), rcond=None)[0]
        error = np.abs(a @ coef / t - 1)
        out["ours" if side == 0 else "xnnpack"] = {
            **dict(zip(names, (float(c) for c in coef))),
            "median_relative_error": float(np.median(error)),
        }
    return out


def measure_handoffs(args) -> list[dict]:
    records = []
    for hw, c in ((6, 32), (24, 32), (6, 128)):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((hw, hw, c))
        h = inputs
        for _ in range(CHAIN):
            h = keras.layers.Conv2D(c, 1, activation="relu")(h)
        rng = np.random.default_rng(0)
        samples = rng.normal(size=(32, hw, hw, c)).astype("float32")
        content = int8_tflite(keras.Model(inputs, h), samples)
        ids = [n.node for n in candidates(content)]
        none, every, half, quarter = cpu_times(
            content, [[], ids, ids[::2], ids[::4]], args.rounds, args.invokes
        )
        per_node = (every - none) / len(ids)
        record = {"shape": [hw, hw, c], "convs": len(ids), "none_us": float(none)}
        record.update({"all_us": float(every), "every_other_us": float(half)})
        record["every_fourth_us"] = float(quarter)
        record["ours_minus_xnnpack_per_node_us"] = float(per_node)
        for key, claimed, t in (
            ("every_other", ids[::2], half),
            ("every_fourth", ids[::4], quarter),
        ):
            record[f"handoff_us_{key}"] = float(
                (t - none - per_node * len(claimed)) / (2 * len(claimed))
            )
        records.append(record)
        print(f"chain {hw}x{hw}x{c}: {record}", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--invokes", type=int, default=100)
    parser.add_argument("--output_dir", default=harness.RESULTS_DIR)
    parser.add_argument(
        "--cpu_tag",
        default="",
        help="added to the file name, for two CPUs of one kind (e.g. zen5): "
        "kernels-<CPU kind>-<tag>-conv-shapes",
    )
    args = parser.parse_args()
    shapes = measure_shapes(args)
    constants = fit(shapes)
    handoffs = measure_handoffs(args)
    ours, xnn = constants["ours"], constants["xnnpack"]
    rows = [
        [
            f"{r['taps'] and '3x3' or '1x1'}",
            str(r["rows"]),
            str(r["n"]),
            str(r["k"]),
            f"{r['block_density']:.2f}",
            r["kernel"],
            f"{r['xnnpack_us']:.2f}",
            f"{r['ours_us']:.2f}",
            f"{r['xnnpack_us'] / r['ours_us']:.2f}x",
        ]
        for r in shapes
    ]
    notes = (
        f"Fit (ns): ours {ours['output_ns']:.3f} per output, {ours['mac_ns']:.4f} per issued "
        f"multiply-add, {ours['input_byte_ns']:.3f} per input byte, {ours['im2col_tap_ns']:.2f} "
        f"per row and im2col tap (median error {ours['median_relative_error']:.0%}); XNNPACK "
        f"{xnn['output_ns']:.3f} per output, {xnn['mac_ns']:.4f} per multiply-add (median "
        f"error {xnn['median_relative_error']:.0%}); constant per model (the invoke() floor): "
        f"ours {ours['node_ns']:.0f}, XNNPACK {xnn['node_ns']:.0f}.\n\nHand-offs between our "
        f"partition and XNNPACK's, chains of {CHAIN} 1x1 convs (us per hand-off beyond the "
        "nodes' own times; every other / every fourth node claimed): "
        + "; ".join(
            f"{'x'.join(map(str, h['shape']))}: {h['handoff_us_every_other']:+.2f} / "
            f"{h['handoff_us_every_fourth']:+.2f} (none {h['none_us']:.1f} us, all "
            f"{h['all_us']:.1f} us)"
            for h in handoffs
        )
        + f".\n\nThread CPU time of `invoke()`, median of {args.rounds} interleaved rounds of "
        f"the mean of {args.invokes} calls; load average at the end {os.getloadavg()[0]:.1f}."
    )
    paths = harness.write_results(
        f"{harness.kernel_table_name(host_kind(), args.cpu_tag)}-conv-shapes",
        "int8 convs by shape: ours vs XNNPACK (1 thread, thread CPU time)",
        ["conv", "rows", "n", "k", "block density", "kernel", "XNNPACK (us)", "ours (us)", "ratio"],
        rows,
        [{"args": vars(args), "shapes": shapes, "fit": constants, "handoffs": handoffs}],
        notes,
        output_dir=os.path.abspath(args.output_dir),
    )
    with open(paths[1], encoding="utf-8") as f:
        print(f.read())


if __name__ == "__main__":
    main()
