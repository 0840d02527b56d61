"""MobileNetV2 end to end for `benchmarks/kernels.py`: ours vs the default interpreter.

`keras.applications.MobileNetV2(alpha=0.35, input 96x96x1, weights=None, 10 classes)` on
MNIST-5k digits upsampled to 96x96: pretrained briefly, then its 1x1 convolutions pruned in
16x4 blocks to 80% and 90% (the first conv, the depthwise convs and the classifier kept
dense), prune-preserving QAT briefly, exported to int8 with int8 I/O. Training is kept
short (`--mobilenet_images` images, one epoch per stage): the accuracy is not the point,
the latency of the pruned graph and the identity of its predictions are. Timed at batch 1,
interleaved: ours as deployed (`kernel="auto"`), ours on every node (`nodes="all"`, the
depthwise convs included) and the default interpreter (XNNPACK).
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks.kernel_models import BLOCK
from benchmarks.kernel_runner import interleaved, interpreter, nodes, raw_outputs
from tfcompress.datasets import load_mnist5k
from tfcompress.demo import compile_classifier
from tfcompress.export import TFLiteFile, export_tflite
from tfcompress.pruning import (
    PolynomialDecay,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import quantize_model

SPARSITIES = (0.8, 0.9)
SIZE = 96
TIMED = ("ours", "ours_all", "xnnpack")


def upsampled(x: np.ndarray) -> np.ndarray:
    """MNIST images [n, 28, 28] (or with a channel) at SIZE x SIZE x 1."""
    return tf.image.resize(x.reshape(-1, 28, 28, 1), (SIZE, SIZE)).numpy()


def is_pointwise(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
        and tuple(layer.kernel_size) == (1, 1)
    )


def train(data, images: int, seed: int) -> tuple[str, dict[float, bytes]]:
    """The int8 `.tflite` of each sparsity, pruned and QAT-trained from one pretrained model."""
    x, y = upsampled(data.x_train[:images]), data.y_train[:images]
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 1),
        alpha=0.35,
        weights=None,
        classes=10,
        classifier_activation=None,
    )
    compile_classifier(base).fit(x, y, epochs=1, batch_size=64, verbose=2)
    skip = [layer.name for layer in base.layers if not is_pointwise(layer)]
    steps = -(-images // 64)
    out = {}
    for sparsity in SPARSITIES:
        keras.utils.set_random_seed(seed)
        schedule = PolynomialDecay(0.0, sparsity, begin_step=0, end_step=steps // 2, frequency=1)
        wrapped = prune_low_magnitude(base, schedule, block_size=BLOCK, skip=skip)
        compile_classifier(wrapped).fit(
            x, y, epochs=1, batch_size=64, verbose=2, callbacks=[UpdatePruningStep()]
        )
        qat = quantize_model(strip_pruning(wrapped), scheme="prune_preserve_8bit")
        compile_classifier(qat, 1e-4).fit(x, y, epochs=1, batch_size=64, verbose=2)
        out[sparsity] = export_tflite(qat, mode="int8", io_type="int8")
    return base.name, out


def run_mobilenet(args) -> list[dict]:
    """One record per sparsity: latencies, speed-ups, per-node kernels, identical outputs."""
    data = load_mnist5k(seed=args.seed)
    start = time.perf_counter()
    name, variants = train(data, args.mobilenet_images, args.seed)
    train_s = time.perf_counter() - start
    x_test = upsampled(data.x_test[: args.mobilenet_checked])
    records = []
    for sparsity, content in variants.items():
        models = {variant: interpreter(content, variant) for variant in TIMED}
        raw = {variant: raw_outputs(model, x_test) for variant, model in models.items()}
        raw["reference"] = raw_outputs(interpreter(content, "reference"), x_test)
        medians = interleaved(models, x_test[:1], args.rounds, args.invokes, args.warmup)
        latency = {
            v: {"median": float(np.median(m)), "min": float(np.min(m)), "rounds": m}
            for v, m in medians.items()
        }
        speedups = {
            f"{v}_vs_xnnpack": float(
                np.median(np.asarray(medians["xnnpack"]) / np.asarray(medians[v]))
            )
            for v in ("ours", "ours_all")
        }
        differences = {
            f"{v}_vs_{ref}": {
                "argmax_differs": int(np.sum(raw[v].argmax(-1) != raw[ref].argmax(-1))),
                "int8_outputs_differ": int(np.sum(np.any(raw[v] != raw[ref], axis=-1))),
            }
            for v in ("ours", "ours_all")
            for ref in ("xnnpack", "reference")
        }
        record = {
            "model": f"{name} alpha 0.35 {SIZE}x{SIZE}",
            "sparsity": sparsity,
            "tflite_bytes": len(content),
            "ops": [op.name for op in TFLiteFile(content).ops],
            "checked_images": len(x_test),
            "latency_us": latency,
            "speedups": speedups,
            "differences": differences,
            "ours_nodes": nodes(models["ours"]),
            "ours_all_nodes": nodes(models["ours_all"]),
            "train_s": train_s,
        }
        records.append(record)
        print(
            f"{record['model']} {sparsity:.0%}: "
            + ", ".join(f"{v} {latency[v]['median']:.0f} us" for v in TIMED)
            + f"; auto {speedups['ours_vs_xnnpack']:.2f}x, "
            f"all {speedups['ours_all_vs_xnnpack']:.2f}x",
            flush=True,
        )
    return records


def mobilenet_rows(records: list[dict]) -> list[list[str]]:
    """Table rows: one per sparsity."""
    rows = []
    for r in records:
        lat = r["latency_us"]
        claimed = [n for n in r["ours_nodes"] if n["claimed"]]
        diff = r["differences"]
        rows.append(
            [
                r["model"],
                f"{r['sparsity']:.0%}",
                f"{lat['ours']['median']:.0f}",
                f"{lat['ours_all']['median']:.0f}",
                f"{lat['xnnpack']['median']:.0f}",
                f"{r['speedups']['ours_vs_xnnpack']:.2f}x",
                f"{r['speedups']['ours_all_vs_xnnpack']:.2f}x",
                f"{len(claimed)} of {len(r['ours_nodes'])}",
                f"{diff['ours_vs_reference']['int8_outputs_differ']}, "
                f"{diff['ours_all_vs_reference']['int8_outputs_differ']} / {r['checked_images']}",
                f"{diff['ours_vs_xnnpack']['argmax_differs']}, "
                f"{diff['ours_all_vs_xnnpack']['argmax_differs']}",
            ]
        )
    return rows


MOBILENET_HEADERS = [
    "model",
    "1x1 block sparsity",
    "ours auto (us)",
    "ours all nodes (us)",
    "XNNPACK (us)",
    "auto vs XNNPACK",
    "all vs XNNPACK",
    "nodes claimed (auto)",
    "images whose int8 outputs != reference (auto, all)",
    "predictions != XNNPACK (auto, all)",
]


def node_lines(record: dict) -> str:
    """Per node: op, shape, block density, the kernel each variant chose."""
    lines = [f"Nodes of {record['model']} at {record['sparsity']:.0%} (auto / all):", ""]
    auto = {n["node"]: n for n in record["ours_nodes"]}
    for n in record["ours_all_nodes"]:
        a = auto.get(n["node"], {})
        chosen = a.get("kernel", "?") if a.get("claimed") else "XNNPACK"
        lines.append(
            f"- node {n['node']} {n['op']} {n['n']}x{n['k']} rows {n['rows']} density "
            f"{n['block_density']:.2f}: auto {chosen} (expected "
            f"{a.get('expected_speedup', 0):.2f}x), all {n['kernel']} {n['isa'] or ''}"
        )
    return "\n".join(lines)
