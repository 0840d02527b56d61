"""Our int8 kernels (`tfcompress.kernels`) vs XNNPACK and TFLite's builtin kernels, in one run.

What is measured, on one thread:

* Per layer: a 1024x1024 int8 FULLY_CONNECTED at batch 1 and 32, dense and with
  50/80/90% of its 16x4 weight blocks (16 outputs x 4 inputs of the TFLite
  `[out][in]` matrix, i.e. 4x16 tiles of the Keras `[in][out]` kernel) zeroed
  at random; and three MobileNet-like CONV_2D layers (1x1 28x28x128->128,
  3x3 28x28x64->64, 1x1 14x14x256->256; filter `[out][kh][kw][in]`, blocks of
  16 output channels x 4 consecutive entries of `kh*kw*in`), dense and 80%
  block-sparse. Each layer is a one-node full-int8 `.tflite` (int8 input and
  output, ReLU fused), run by four interpreters: ours (`KernelDelegate(
  kernel="auto")`), ours with the dense kernel forced (`kernel="dense"`),
  the default interpreter (XNNPACK) and the builtin kernels without XNNPACK.
* End to end: the small CNN and LeNet-300-100, trained on MNIST-5k, pruned to
  80% and 90% in 16x4 blocks (`conv1` and `logits` kept dense, as in
  `tfcompress/demo.py`), pruning-preserving QAT, exported to int8 with int8
  I/O. Latency at batch 1 with our delegate (its nodes claimed first, XNNPACK
  taking the rest, as `TFLiteModel(use_tfcompress_kernels=True)` does), with
  the default interpreter and with the builtin kernels; the accuracy of each on
  the 1,000 test images, whether the predictions and raw int8 outputs are
  identical, and which nodes our delegate claimed with which kernel.

How: the machine is shared and noisy, so the interpreters of one case are
timed interleaved: for R rounds, each interpreter in turn (the order rotated
every round) runs N `invoke()` calls (after a warm-up), and the round's median
is kept. A variant's latency is the median over the rounds of those medians
(and their minimum); a speed-up is the median over the rounds of the ratio of
two variants' medians, measured side by side in the same round.

Run from the repository root (needs the kernel library: `pip install -e .`):
    python -m benchmarks.kernels [--quick] [--rounds R] [--invokes N]
        [--pretrain_epochs E] [--prune_epochs E] [--qat_epochs E] [--output_dir DIR]
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

import benchmarks.harness as harness
from benchmarks.kernel_runner import LABELS, VARIANTS, Runner, cpu_flags, interleaved, summarize
from tfcompress.datasets import load_mnist5k
from tfcompress.demo import KEPT_DENSE, compile_classifier
from tfcompress.export import export_tflite
from tfcompress.kernels import best_isa
from tfcompress.models import lenet_300_100, small_cnn
from tfcompress.pruning import (
    PolynomialDecay,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import quantize_model
from tfcompress.reporting.table import render_table

BLOCK = (16, 4)  # (outputs, inputs) of the TFLite [out][in] weight matrix
FC_SIZE = 1024
FC_SPARSITIES = (0.0, 0.5, 0.8, 0.9)
FC_BATCHES = (1, 32)
# (label, spatial size, input channels, output channels, kernel size)
CONV_SHAPES = (
    ("1x1 28x28x128->128", 28, 128, 128, 1),
    ("3x3 28x28x64->64", 28, 64, 64, 3),
    ("1x1 14x14x256->256", 14, 256, 256, 1),
)
CONV_SPARSITIES = (0.0, 0.8)
E2E_SPARSITIES = (0.8, 0.9)
CALIBRATION = 32  # random samples calibrating the one-layer models

# --------------------------------------------------------------------------- one-layer models


def block_keep(n_out: int, k_in: int, sparsity: float, rng: np.random.Generator) -> np.ndarray:
    """1/0 mask in the Keras `[in][out]` layout with `round(sparsity * blocks)` random 16x4
    blocks of the TFLite `[out][in]` matrix zeroed (the last block row may be partial)."""
    rows, cols = -(-n_out // BLOCK[0]), k_in // BLOCK[1]
    blocks = np.ones(rows * cols, dtype=np.float32)
    blocks[rng.choice(blocks.size, int(round(sparsity * blocks.size)), replace=False)] = 0.0
    tiles = blocks.reshape(rows, cols)
    matrix = np.repeat(np.repeat(tiles, BLOCK[0], axis=0), BLOCK[1], axis=1)[:n_out, :k_in]
    return matrix.T


def int8_tflite(model: keras.Model, samples: np.ndarray) -> bytes:
    """Full-integer `.tflite` with int8 input and output, calibrated on `samples`."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def fc_model(sparsity: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    inputs = keras.Input((FC_SIZE,))
    layer = keras.layers.Dense(FC_SIZE, activation="relu")
    model = keras.Model(inputs, layer(inputs))
    kernel = rng.normal(0.0, FC_SIZE**-0.5, (FC_SIZE, FC_SIZE)).astype("float32")
    kernel *= block_keep(FC_SIZE, FC_SIZE, sparsity, rng)
    layer.set_weights([kernel, rng.normal(0.0, 0.1, FC_SIZE).astype("float32")])
    samples = rng.normal(size=(CALIBRATION, FC_SIZE)).astype("float32")
    return int8_tflite(model, samples)


def conv_model(size: int, c_in: int, c_out: int, k: int, sparsity: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    inputs = keras.Input((size, size, c_in))
    layer = keras.layers.Conv2D(c_out, k, padding="same", activation="relu")
    model = keras.Model(inputs, layer(inputs))
    fan_in = k * k * c_in
    kernel = rng.normal(0.0, fan_in**-0.5, (fan_in, c_out)).astype("float32")
    kernel *= block_keep(c_out, fan_in, sparsity, rng)  # [kh*kw*in][out], TFLite's order
    layer.set_weights([kernel.reshape(k, k, c_in, c_out),
                       rng.normal(0.0, 0.1, c_out).astype("float32")])  # fmt: skip
    samples = rng.normal(size=(CALIBRATION, size, size, c_in)).astype("float32")
    return int8_tflite(model, samples)


def layer_cases() -> list[dict]:
    cases = []
    for sparsity in FC_SPARSITIES:
        for batch in FC_BATCHES:
            cases.append({"layer": f"FC {FC_SIZE}x{FC_SIZE}", "kind": "fc", "batch": batch,
                          "sparsity": sparsity, "shape": (batch, FC_SIZE)})  # fmt: skip
    for label, size, c_in, c_out, k in CONV_SHAPES:
        for sparsity in CONV_SPARSITIES:
            cases.append({"layer": f"conv {label}", "kind": "conv", "batch": 1,
                          "sparsity": sparsity, "shape": (1, size, size, c_in),
                          "conv": (size, c_in, c_out, k)})  # fmt: skip
    return cases


def progress(label: str, record: dict, extra: str) -> None:
    """One line per measured case: latencies, our speed-up over XNNPACK, and `extra`."""
    latencies = ", ".join(f"{LABELS[n]} {v['median']:.1f} us"
                          for n, v in record["latency_us"].items())  # fmt: skip
    speedup = record["speedups"]["ours_vs_xnnpack"]["median"]
    print(f"{label}: {latencies}; ours vs XNNPACK {speedup:.2f}x; {extra}", flush=True)


def run_layers(args) -> list[dict]:
    records = []
    contents: dict[tuple, bytes] = {}
    for i, case in enumerate(layer_cases()):
        key = (case["layer"], case["sparsity"])
        if key not in contents:
            seed = args.seed * 1000 + i
            contents[key] = (fc_model(case["sparsity"], seed) if case["kind"] == "fc"
                             else conv_model(*case["conv"], case["sparsity"], seed))  # fmt: skip
        runners = {name: Runner(contents[key], name, case["shape"]) for name in VARIANTS}
        x = np.random.default_rng(i).integers(-128, 128, size=case["shape"], dtype=np.int8)
        outputs = {name: runner.run(x) for name, runner in runners.items()}
        outputs["reference"] = Runner(contents[key], "reference", case["shape"]).run(x)
        medians = interleaved(runners, args.rounds, args.invokes, args.warmup)
        nodes = runners["ours"].nodes()
        record = {
            "layer": case["layer"], "batch": case["batch"], "sparsity": case["sparsity"],
            "input_shape": list(case["shape"]), "tflite_bytes": len(contents[key]),
            "ours_nodes": nodes, "ours_dense_nodes": runners["ours_dense"].nodes(),
            "ours_counters": runners["ours"].kernels.counters(),
            "outputs_differing_from_reference": {
                name: int(np.sum(outputs[name] != outputs["reference"])) for name in VARIANTS},
            "output_elements": int(outputs["reference"].size),
            **summarize(medians),
        }  # fmt: skip
        records.append(record)
        progress(f"{case['layer']} batch {case['batch']} sparsity {case['sparsity']:.0%}",
                 record, "kernel " + ", ".join(n["kernel"] for n in nodes))  # fmt: skip
    return records


def invoke_floor(args) -> dict:
    """`invoke()` of a one-node 16x16 FC (builtin kernels): the Python call's own cost."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(16)(inputs))
    content = int8_tflite(model, rng.normal(size=(CALIBRATION, 16)).astype("float32"))
    runner = Runner(content, "builtin", (1, 16))
    medians = interleaved({"builtin": runner}, args.rounds, args.invokes, args.warmup)
    values = medians["builtin"]
    return {"median_us": float(np.median(values)), "min_us": float(np.min(values))}


# --------------------------------------------------------------------------- end to end


def layer_shapes(model: keras.Model) -> dict[tuple[int, int], str]:
    """(n, k) of each Dense/Conv2D as TFLite stores it -> layer name."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            shape = tuple(layer.kernel.shape)
            out[(int(shape[-1]), int(np.prod(shape[:-1])))] = layer.name
    return out


def train(builder, data, sparsities, args) -> tuple[keras.Model, dict[float, dict]]:
    """Pretrains once, then block-prunes and QATs per sparsity as `tfcompress/demo.py` does."""
    keras.utils.set_random_seed(args.seed)
    base = compile_classifier(builder())
    base.fit(data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=64, verbose=2)
    out = {}
    steps = args.prune_epochs * -(-len(data.x_train) // 64)
    for sparsity in sparsities:
        keras.utils.set_random_seed(args.seed)
        schedule = PolynomialDecay(0.0, sparsity, begin_step=0, end_step=steps // 2, frequency=10)
        wrapped = prune_low_magnitude(base, schedule, block_size=BLOCK, skip=KEPT_DENSE)
        pruned = compile_classifier(wrapped)
        pruned.fit(data.x_train, data.y_train, epochs=args.prune_epochs, batch_size=64,
                   verbose=2, callbacks=[UpdatePruningStep()])  # fmt: skip
        qat = quantize_model(strip_pruning(pruned), scheme="prune_preserve_8bit")
        qat = compile_classifier(qat, 1e-4)
        qat.fit(data.x_train, data.y_train, epochs=args.qat_epochs, batch_size=64, verbose=2)
        logits = qat.predict(data.x_test, batch_size=256, verbose=0)
        out[sparsity] = {
            "content": export_tflite(qat, mode="int8", io_type="int8"),
            "keras_qat_accuracy": float(np.mean(logits.argmax(-1) == data.y_test)),
        }
    logits = base.predict(data.x_test, batch_size=256, verbose=0)
    base_accuracy = float(np.mean(logits.argmax(-1) == data.y_test))
    return base, {"float_accuracy": base_accuracy, "variants": out}


def quantize_input(runner: Runner, x: np.ndarray) -> np.ndarray:
    detail = runner.interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def run_end_to_end(args) -> list[dict]:
    data = load_mnist5k(seed=args.seed)
    records = []
    for builder in (small_cnn, lenet_300_100):
        start = time.perf_counter()
        base, trained = train(builder, data, E2E_SPARSITIES, args)
        train_s = time.perf_counter() - start
        names = layer_shapes(base)
        for sparsity, variant in trained["variants"].items():
            content = variant["content"]
            shape = (1, *data.x_test.shape[1:])
            runners = {name: Runner(content, name, shape) for name in VARIANTS}
            xq = quantize_input(runners["builtin"], data.x_test)
            checked = {**runners, "reference": Runner(content, "reference", shape)}
            raw = {name: np.concatenate([runner.run(xq[i : i + 1]) for i in range(len(xq))])
                   for name, runner in checked.items()}  # fmt: skip
            for runner in runners.values():
                runner.run(xq[:1])  # the timed input: the first test image
            medians = interleaved(runners, args.rounds, args.invokes, args.warmup)
            nodes = runners["ours"].nodes()
            for node in nodes:
                node["layer"] = names.get((node["n"], node["k"]), "?")
            accuracy = {name: float(np.mean(out.argmax(-1) == data.y_test))
                        for name, out in raw.items()}  # fmt: skip
            same = {}
            for ours in ("ours", "ours_dense"):
                for ref in ("xnnpack", "builtin", "reference"):
                    same[f"{ours}_vs_{ref}"] = {
                        "argmax_differs": int(np.sum(raw[ours].argmax(-1) != raw[ref].argmax(-1))),
                        "int8_outputs_differ": int(np.sum(np.any(raw[ours] != raw[ref], axis=-1))),
                    }
            ops = [d["op_name"] for d in runners["builtin"].interpreter._get_ops_details()]
            record = {
                "model": base.name, "sparsity": sparsity, "tflite_bytes": len(content),
                "float_accuracy": trained["float_accuracy"],
                "keras_qat_accuracy": variant["keras_qat_accuracy"],
                "tflite_accuracy": accuracy, "differences": same, "ops": ops,
                "ours_nodes": nodes, "ours_dense_nodes": runners["ours_dense"].nodes(),
                "ours_counters": runners["ours"].kernels.counters(),
                "ours_log": runners["ours"].log, "train_s": train_s,
                **summarize(medians),
            }  # fmt: skip
            records.append(record)
            progress(f"{base.name} {sparsity:.0%}", record, "accuracy "
                     + ", ".join(f"{LABELS[n]} {a:.3f}" for n, a in accuracy.items()))  # fmt: skip
    return records


# --------------------------------------------------------------------------- report


def us(entry: dict) -> str:
    return f"{entry['median']:.1f} ({entry['min']:.1f})"


def ratio(entry: dict, spread: bool = True) -> str:
    text = f"{entry['median']:.2f}x"
    return f"{text} ({entry['min']:.2f}-{entry['max']:.2f})" if spread else text


def kernels_of(nodes: list[dict]) -> str:
    return ", ".join(f"{n['kernel']} {n['isa']}" if n["isa"] else n["kernel"] for n in nodes) or "-"


def layer_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        lat, s = r["latency_us"], r["speedups"]
        density = ", ".join(f"{n['block_density']:.2f}" for n in r["ours_nodes"]) or "-"
        diff = r["outputs_differing_from_reference"]
        rows.append([r["layer"], str(r["batch"]), f"{r['sparsity']:.0%}", density,
                     kernels_of(r["ours_nodes"]), us(lat["ours"]), us(lat["ours_dense"]),
                     us(lat["xnnpack"]), us(lat["builtin"]), ratio(s["ours_vs_xnnpack"]),
                     ratio(s["ours_dense_vs_xnnpack"], False), ratio(s["ours_vs_builtin"], False),
                     ", ".join(str(diff[name]) for name in VARIANTS)
                     + f" of {r['output_elements']:,}"])  # fmt: skip
    return rows


REFS = ("xnnpack", "builtin", "reference")


def e2e_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        lat, s, acc, diff = r["latency_us"], r["speedups"], r["tflite_accuracy"], r["differences"]
        rows.append([r["model"], f"{r['sparsity']:.0%}", us(lat["ours"]), us(lat["ours_dense"]),
                     us(lat["xnnpack"]), us(lat["builtin"]), ratio(s["ours_vs_xnnpack"]),
                     ratio(s["ours_vs_builtin"], False), f"{acc['ours']:.3f}",
                     f"{acc['xnnpack']:.3f}", f"{acc['builtin']:.3f}",
                     " / ".join(str(diff[f"ours_vs_{ref}"]["argmax_differs"]) for ref in REFS),
                     " / ".join(str(diff[f"ours_vs_{ref}"]["int8_outputs_differ"])
                                for ref in REFS)])  # fmt: skip
    return rows


def node_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        c = r["ours_counters"]
        for n in r["ours_nodes"]:
            rows.append([r["model"], f"{r['sparsity']:.0%}", str(n["node"]), n["layer"], n["op"],
                         f"{n['n']}x{n['k']}", f"{n['block_density']:.2f}",
                         f"{n['kernel']} {n['isa'] or ''}".strip(),
                         f"{c['nodes_claimed']} claimed, {c['nodes_declined']} declined, "
                         f"{c['partitions']} partitions"])  # fmt: skip
    return rows


def find(records: list[dict], **match) -> dict | None:
    return next((r for r in records if all(r[k] == v for k, v in match.items())), None)


def targets(layers: list[dict], e2e: list[dict]) -> list[list[str]]:
    def verdict(value, bound):
        return "n/a (row missing)" if value is None else ("met" if value >= bound else "NOT met")

    fc = f"FC {FC_SIZE}x{FC_SIZE}"
    rows = []
    for sparsity, bound in ((0.8, 4.0), (0.9, 6.0)):
        r = find(layers, layer=fc, batch=1, sparsity=sparsity)
        value = r and r["speedups"]["ours_vs_xnnpack"]["median"]
        rows.append([f"{fc}, batch 1, {sparsity:.0%} block-sparse: >= {bound:g}x faster than "
                     "XNNPACK", "-" if r is None else ratio(r["speedups"]["ours_vs_xnnpack"]),
                     verdict(value, bound)])  # fmt: skip
    for r in layers:
        if r["sparsity"] == 0.0:  # auto picks the dense kernel here; the forced run is shown too
            auto, dense = r["speedups"]["ours_vs_xnnpack"], r["speedups"]["ours_dense_vs_xnnpack"]
            rows.append([f"dense {r['layer']}, batch {r['batch']}: no slower than XNNPACK",
                         f"{ratio(auto)}; forced dense {ratio(dense)}",
                         verdict(auto["median"], 1.0)])  # fmt: skip
    r = find(e2e, model="small_cnn", sparsity=0.8)
    value = r and r["speedups"]["ours_vs_xnnpack"]["median"]
    rows.append(["small CNN, 80% block-pruned, end to end (batch 1): >= 2x faster than XNNPACK",
                 "-" if r is None else ratio(r["speedups"]["ours_vs_xnnpack"]),
                 verdict(value, 2.0)])  # fmt: skip
    return rows


def floor_note(layers: list[dict], floor: dict) -> str:
    """The batch-1 sparse FC ratios with the invoke() floor taken off both sides (information
    only: the verdicts use the times as measured)."""
    parts = []
    for sparsity in (0.8, 0.9):
        r = find(layers, layer=f"FC {FC_SIZE}x{FC_SIZE}", batch=1, sparsity=sparsity)
        if r is not None:
            ours, xnn = r["latency_us"]["ours"]["median"], r["latency_us"]["xnnpack"]["median"]
            net = (xnn - floor["median_us"]) / max(ours - floor["median_us"], 1e-9)
            parts.append(f"{sparsity:.0%} {net:.2f}x")
    return (
        (
            "For information only (the verdicts above use the times as measured): with the "
            f"{floor['median_us']:.1f} us `invoke()` floor taken off both medians, ours vs XNNPACK "
            f"on the batch-1 FC is {', '.join(parts)}."
        )
        if parts
        else ""
    )


def describe(args, layers, e2e, floor, machine, minutes) -> str:
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in machine["cpu_flags"].items())
    method = (
        f"One thread everywhere (`num_threads=1` for the interpreters and "
        f"`KernelDelegate(num_threads=1)`). Our kernel path: `{machine['isa']}` (`best_isa()`); "
        f"CPU flags: {flags}. Latency cells: median (min) in microseconds over {args.rounds} "
        f"rounds of the median of {args.invokes} `invoke()` calls (after {args.warmup} warm-up "
        "calls per interpreter); in each round every variant of a case runs in turn, the order "
        "rotated each round. Speed-ups: the median (min-max) over the rounds of the per-round "
        "ratio, measured side by side. Times are of Python's `Interpreter.invoke()`, which "
        f"itself costs about {floor['median_us']:.1f} us (min {floor['min_us']:.1f} us: a "
        "one-node 16x16 FC on the builtin kernels, timed the same way); this floor is included "
        'in every cell and is not subtracted. `ours auto`: `KernelDelegate(kernel="auto")` '
        "(sparse kernel when at most 70% of the 16x4 blocks hold a non-zero); `ours dense`: "
        '`kernel="dense"` forced; our delegate is applied first and the default XNNPACK '
        "delegate takes the nodes we leave; `XNNPACK`: the default interpreter "
        "(`OpResolverType.AUTO`); `builtin`: `BUILTIN_WITHOUT_DEFAULT_DELEGATES`."
    )
    layer_text = (
        "Per layer: one-node full-int8 `.tflite` (int8 input and output, ReLU fused), random "
        "Gaussian weights with `round(sparsity x blocks)` 16x4 blocks zeroed at random, "
        f"calibrated on {CALIBRATION} random inputs; the timed input is random int8. `block "
        "density`: fraction of 16x4 blocks holding a non-zero, as our delegate measured it in the "
        "`.tflite`. Last column: how many int8 output elements of ours auto, ours dense, XNNPACK "
        "and the builtin kernels differ from TFLite's reference kernels (`BUILTIN_REF`, not "
        "timed) on the timed input."
    )
    steps = args.prune_epochs * -(-4000 // 64)
    e2e_text = (
        f"End to end: MNIST-5k (4,000 / 1,000, seed {args.seed}); each model pretrained for "
        f"{args.pretrain_epochs} epochs (Adam 1e-3, batch 64), then per sparsity "
        f"`prune_low_magnitude(block_size=(16, 4), skip={KEPT_DENSE})` with "
        f"PolynomialDecay(0 -> sparsity, end_step {steps // 2}, frequency 10) for "
        f"{args.prune_epochs} epochs, `strip_pruning`, `quantize_model(scheme="
        f'"prune_preserve_8bit")` for {args.qat_epochs} epoch(s) (Adam 1e-4), '
        '`export_tflite(qat, mode="int8", io_type="int8")`. Latency: batch 1, the first test '
        "image. Accuracy: each interpreter on the 1,000 test images, one at a time. The last two "
        "columns count the test images whose argmax, or whose raw int8 output vector, differs "
        "between ours (auto) and XNNPACK / the builtin kernels / TFLite's reference kernels "
        "(`BUILTIN_REF`, not timed)."
    )
    accuracy_lines = []
    for r in e2e:
        accuracy_lines.append(f"{r['model']} {r['sparsity']:.0%}: float {r['float_accuracy']:.3f},"
                              f" QAT Keras {r['keras_qat_accuracy']:.3f}")  # fmt: skip
    return "\n\n".join([
        method,
        layer_text,
        "## End to end (batch 1)",
        render_table(["model", "block sparsity", "ours auto (us)", "ours dense (us)",
                      "XNNPACK (us)", "builtin (us)", "ours vs XNNPACK", "ours vs builtin",
                      "acc. ours", "acc. XNNPACK", "acc. builtin",
                      "argmax differs (vs XNNPACK / builtin / reference)",
                      "int8 output differs (vs XNNPACK / builtin / reference)"], e2e_rows(e2e),
                     markdown=True),
        e2e_text + " Keras accuracies (before export): " + "; ".join(accuracy_lines) + ".",
        "## Nodes our delegate claimed (kernel=\"auto\")",
        render_table(["model", "sparsity", "node", "layer", "op", "weights (n x k)",
                      "block density", "kernel", "counters"], node_rows(e2e), markdown=True),
        "## Targets",
        render_table(["target", "measured", "verdict"], targets(layers, e2e), markdown=True),
        floor_note(layers, floor),
        f"Total runtime: {minutes:.1f} min (training included).",
    ])  # fmt: skip


def resolve(args) -> argparse.Namespace:
    """Fills the flags left unset with the full or the `--quick` defaults."""
    full = {"rounds": 7, "invokes": 200, "warmup": 20, "pretrain_epochs": 3, "prune_epochs": 2,
            "qat_epochs": 1}  # fmt: skip
    quick = {"rounds": 3, "invokes": 30, "warmup": 5, "pretrain_epochs": 1, "prune_epochs": 1,
             "qat_epochs": 1}  # fmt: skip
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: fewer rounds, invokes and epochs"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; quick 3)")
    parser.add_argument(
        "--invokes",
        type=int,
        help="timed invoke() calls per variant and round (default 200; quick 30)",
    )
    parser.add_argument("--warmup", type=int, help="warm-up calls per interpreter (default 20)")
    parser.add_argument("--pretrain_epochs", type=int, help="default 3; quick 1")
    parser.add_argument("--prune_epochs", type=int, help="default 2; quick 1")
    parser.add_argument("--qat_epochs", type=int, help="default 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output_dir",
        default=harness.RESULTS_DIR,
        help="where kernels.json and kernels.md go (default benchmarks/results)",
    )
    args = resolve(parser.parse_args())  # fmt: skip
    if min(args.rounds, args.invokes, args.pretrain_epochs, args.prune_epochs,
           args.qat_epochs) < 1 or args.warmup < 0:  # fmt: skip
        parser.error("rounds, invokes and epochs must be >= 1, warmup >= 0")

    start = time.perf_counter()
    machine = {"cpu": harness.cpu_model(), "cpu_flags": cpu_flags(), "isa": best_isa()}
    print(f"CPU {machine['cpu']}, our kernel path {machine['isa']}", flush=True)
    floor = invoke_floor(args)
    layers = run_layers(args)
    e2e = run_end_to_end(args)
    minutes = (time.perf_counter() - start) / 60

    headers = ["layer", "batch", "block sparsity", "block density", "kernel (auto)",
               "ours auto (us)", "ours dense (us)", "XNNPACK (us)", "builtin (us)",
               "ours vs XNNPACK", "dense vs XNNPACK", "ours vs builtin",
               "elements != reference (ours auto, ours dense, XNNPACK, builtin)"]  # fmt: skip
    notes = describe(args, layers, e2e, floor, machine, minutes)
    records = [{"args": vars(args), "machine": machine, "invoke_floor_us": floor,
                "runtime_min": minutes, "layers": layers, "end_to_end": e2e,
                "targets": [dict(zip(["target", "measured", "verdict"], row))
                            for row in targets(layers, e2e)]}]  # fmt: skip
    paths = harness.write_results("kernels", "int8 kernels: ours vs XNNPACK vs builtin (1 thread)",
                                  headers, layer_rows(layers), records, notes,
                                  output_dir=os.path.abspath(args.output_dir))  # fmt: skip
    with open(paths[1], encoding="utf-8") as f:
        print(f.read())


if __name__ == "__main__":
    main()
