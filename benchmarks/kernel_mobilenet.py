"""MobileNetV2 end to end for `benchmarks/kernels.py`: ours vs the default interpreter.

`keras.applications.MobileNetV2(alpha=0.35 and 1.0, input 96x96x1, weights=None, 10
classes)` on MNIST-5k digits upsampled to 96x96: pretrained briefly, then its 1x1
convolutions pruned in 16x4 blocks to 80% and 90% (the first conv, the depthwise convs and
the classifier kept dense), prune-preserving QAT briefly, exported to int8 with int8 I/O;
plus the dense int8 model (0%, QAT straight from the pretrained one). Training is kept
short (`--mobilenet_images` images, one epoch per stage): the accuracy is not the point,
the latency of the pruned graph and the identity of its predictions are. Timed at batch 1,
interleaved: ours as deployed (`kernel="auto"`), ours on every node (`nodes="all"`, the
depthwise convs included), ours on the nodes `autotune` chose, and the default interpreter
(XNNPACK). Per node: the kernel each variant chose and the measured gain of claiming that
node alone (the model with only it claimed against none, side by side).
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks.kernel_models import BLOCK
from benchmarks.kernel_report import IDLE
from benchmarks.kernel_runner import (
    interleaved,
    interpreter,
    nodes,
    raw_outputs,
    tuned_interpreter,
)
from tfcompress.datasets import load_mnist5k
from tfcompress.demo import compile_classifier
from tfcompress.export import TFLiteFile, TFLiteModel, export_tflite
from tfcompress.kernels import autotune
from tfcompress.pruning import (
    PolynomialDecay,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import quantize_model

SPARSITIES = (0.0, 0.8, 0.9)
SIZE = 96
TIMED = ("ours", "ours_all", "ours_tuned", "xnnpack")
OURS = ("ours", "ours_all", "ours_tuned")


def upsampled(x: np.ndarray) -> np.ndarray:
    """MNIST images [n, 28, 28] (or with a channel) at SIZE x SIZE x 1."""
    return tf.image.resize(x.reshape(-1, 28, 28, 1), (SIZE, SIZE)).numpy()


def is_pointwise(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
        and tuple(layer.kernel_size) == (1, 1)
    )


def train(data, images: int, seed: int, alpha: float) -> tuple[str, dict[float, bytes]]:
    """The int8 `.tflite` of each sparsity, pruned and QAT-trained from one pretrained model."""
    x, y = upsampled(data.x_train[:images]), data.y_train[:images]
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 1),
        alpha=alpha,
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
        if sparsity == 0.0:  # dense: QAT straight from the pretrained model
            qat = quantize_model(base)
        else:
            schedule = PolynomialDecay(
                0.0, sparsity, begin_step=0, end_step=max(1, steps // 2), frequency=1
            )
            wrapped = prune_low_magnitude(base, schedule, block_size=BLOCK, skip=skip)
            compile_classifier(wrapped).fit(
                x, y, epochs=1, batch_size=64, verbose=2, callbacks=[UpdatePruningStep()]
            )
            qat = quantize_model(strip_pruning(wrapped), scheme="prune_preserve_8bit")
        compile_classifier(qat, 1e-4).fit(x, y, epochs=1, batch_size=64, verbose=2)
        out[sparsity] = export_tflite(qat, mode="int8", io_type="int8")
    return base.name, out


def node_gains(content: bytes, x: np.ndarray, args) -> dict:
    """Per node our delegate can run: the default interpreter's time minus the time with
    only that node claimed (us; > 0: claiming it alone pays), median over interleaved rounds
    of the side-by-side difference; and the same for a second default interpreter against
    the first (`noise_us`: what a difference of nothing reads as)."""
    ids = [n["node"] for n in nodes(interpreter(content, "ours_all"))]
    models = {
        "xnnpack": interpreter(content, "xnnpack"),
        "xnnpack_again": interpreter(content, "xnnpack"),
    }
    models.update({f"node {i}": tuned_interpreter(content, [i]) for i in ids})
    medians = interleaved(models, x, args.rounds, args.invokes, args.warmup)
    base = np.asarray(medians["xnnpack"])

    def gain(name: str) -> float:
        return float(np.median(base - np.asarray(medians[name])))

    return {"noise_us": gain("xnnpack_again"), "gain_us": {i: gain(f"node {i}") for i in ids}}


def run_mobilenet(args) -> list[dict]:
    """One record per width and sparsity: latencies, speed-ups, per-node kernels and gains,
    identical outputs."""
    data = load_mnist5k(seed=args.seed)
    x_test = upsampled(data.x_test[: args.mobilenet_checked])
    records = []
    for alpha in args.mobilenet_alphas:
        start = time.perf_counter()
        name, variants = train(data, args.mobilenet_images, args.seed, alpha)
        train_s = time.perf_counter() - start
        for sparsity, content in variants.items():
            records.append(measure(name, alpha, sparsity, content, x_test, train_s, args))
    return records


def measure(name, alpha, sparsity, content, x_test, train_s, args) -> dict:
    start = time.perf_counter()
    tuned = autotune(content, x_test[:1], rounds=args.rounds, invokes=args.invokes)
    autotune_s = time.perf_counter() - start
    models: dict[str, TFLiteModel] = {
        v: interpreter(content, v) for v in TIMED if v != "ours_tuned"
    }
    models["ours_tuned"] = tuned_interpreter(content, tuned)
    raw = {variant: raw_outputs(model, x_test) for variant, model in models.items()}
    raw["reference"] = raw_outputs(interpreter(content, "reference"), x_test)
    medians = interleaved(models, x_test[:1], args.rounds, args.invokes, args.warmup)
    latency = {
        v: {"median": float(np.median(m)), "min": float(np.min(m)), "rounds": m}
        for v, m in medians.items()
    }
    speedups = {}
    for v in OURS:
        ratios = np.asarray(medians["xnnpack"]) / np.asarray(medians[v])
        speedups[f"{v}_vs_xnnpack"] = float(np.median(ratios))
        speedups[f"{v}_vs_xnnpack_range"] = [float(ratios.min()), float(ratios.max())]
    differences = {
        f"{v}_vs_{ref}": {
            "argmax_differs": int(np.sum(raw[v].argmax(-1) != raw[ref].argmax(-1))),
            "int8_outputs_differ": int(np.sum(np.any(raw[v] != raw[ref], axis=-1))),
        }
        for v in OURS
        for ref in ("xnnpack", "reference")
    }
    record = {
        "model": f"{name} alpha {alpha} {SIZE}x{SIZE}",
        "alpha": alpha,
        "sparsity": sparsity,
        "tflite_bytes": len(content),
        "ops": [op.name for op in TFLiteFile(content).ops],
        "checked_images": len(x_test),
        "latency_us": latency,
        "speedups": speedups,
        "differences": differences,
        "ours_nodes": nodes(models["ours"]),
        "ours_all_nodes": nodes(models["ours_all"]),
        "tuned_nodes": tuned,
        "autotune_s": autotune_s,
        "node_gains": node_gains(content, x_test[:1], args),
        "train_s": train_s,
    }
    print(
        f"{record['model']} {sparsity:.0%}: "
        + ", ".join(f"{v} {latency[v]['median']:.0f} us" for v in TIMED)
        + "; "
        + ", ".join(f"{v} {speedups[f'{v}_vs_xnnpack']:.2f}x" for v in OURS),
        flush=True,
    )
    return record


def mobilenet_rows(records: list[dict]) -> list[list[str]]:
    """Table rows: one per width and sparsity."""
    rows = []
    for r in records:
        lat, sp = r["latency_us"], r["speedups"]
        claimed = [n for n in r["ours_nodes"] if n["claimed"]]
        diff = r["differences"]
        rows.append(
            [
                r["model"],
                f"{r['sparsity']:.0%}",
                *(f"{lat[v]['median']:.0f}" for v in TIMED),
                *(
                    f"{sp[f'{v}_vs_xnnpack']:.2f}x ({sp[f'{v}_vs_xnnpack_range'][0]:.2f}-"
                    f"{sp[f'{v}_vs_xnnpack_range'][1]:.2f})"
                    for v in OURS
                ),
                f"{len(claimed)}, {len(r['tuned_nodes'])} of {len(r['ours_nodes'])}",
                ", ".join(str(diff[f"{v}_vs_reference"]["int8_outputs_differ"]) for v in OURS)
                + f" / {r['checked_images']}",
                ", ".join(str(diff[f"{v}_vs_xnnpack"]["argmax_differs"]) for v in OURS),
            ]
        )
    return rows


MOBILENET_HEADERS = [
    "model",
    "1x1 block sparsity",
    "ours auto (us)",
    "ours all nodes (us)",
    "ours autotuned (us)",
    "XNNPACK (us)",
    "auto vs XNNPACK",
    "all vs XNNPACK",
    "autotuned vs XNNPACK",
    "nodes claimed (auto, autotuned)",
    "images whose int8 outputs != reference (auto, all, autotuned)",
    "predictions != XNNPACK (auto, all, autotuned)",
]


def mobilenet_targets(records: list[dict]) -> list[list[str]]:
    """Verdicts: auto >= 0.95x and autotuned >= 1.0x everywhere, >= 1.5x at 90%."""
    out = []
    for r in records:
        label = f"{r['model']} {r['sparsity']:.0%}"
        sp = r["speedups"]
        claims = {
            "ours": any(n["claimed"] for n in r["ours_nodes"]),
            "ours_tuned": bool(r["tuned_nodes"]),
        }
        for variant, bound in (("ours", 0.95), ("ours_tuned", 1.0)):
            got = sp[f"{variant}_vs_xnnpack"]
            what = "auto" if variant == "ours" else "autotuned"
            judged = verdict(got, bound) if claims[variant] else IDLE
            out.append([f"{label}: {what} >= {bound:.2f}x XNNPACK", f"{got:.2f}x", judged])
        if r["sparsity"] == 0.9:
            best = max(sp[f"{v}_vs_xnnpack"] for v in OURS)
            out.append(
                [f"{label}: >= 1.5x XNNPACK", f"{best:.2f}x (best of ours)", verdict(best, 1.5)]
            )
    return out


def verdict(got: float, bound: float) -> str:
    return "met" if got >= bound else "NOT met"


def node_lines(record: dict) -> str:
    """Per node: op, shape, block density, the kernel each variant chose, and the measured
    gain of claiming it alone."""
    gains = record["node_gains"]
    lines = [
        f"Nodes of {record['model']} at {record['sparsity']:.0%} (auto / autotuned / all; "
        "gain alone: XNNPACK's time minus the time with only this node ours, > 0 pays; "
        f"a second XNNPACK interpreter read {gains['noise_us']:+.1f} us):",
        "",
    ]
    auto = {n["node"]: n for n in record["ours_nodes"]}
    tuned = set(record["tuned_nodes"])
    for n in record["ours_all_nodes"]:
        a = auto.get(n["node"], {})
        chosen = a.get("kernel", "?") if a.get("claimed") else "XNNPACK"
        gain = gains["gain_us"].get(n["node"], gains["gain_us"].get(str(n["node"])))
        lines.append(
            f"- node {n['node']} {n['op']} {n['n']}x{n['k']} rows {n['rows']} density "
            f"{n['block_density']:.2f}: auto {chosen} (expected "
            f"{a.get('expected_speedup', 0):.2f}x), autotuned "
            f"{'ours' if n['node'] in tuned else 'XNNPACK'}, all {n['kernel']} {n['isa'] or ''}; "
            f"gain alone {gain:+.1f} us"
        )
    return "\n".join(lines)
