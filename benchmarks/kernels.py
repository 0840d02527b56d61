"""Our int8 kernels (`tfcompress.kernels`) vs XNNPACK and TFLite's builtin kernels, in one run.

What is measured, on one thread:

* Per layer: a 1024x1024 int8 FULLY_CONNECTED at batch 1 and 32, dense and with
  50/80/90% of its 16x4 weight blocks (16 outputs x 4 inputs of the TFLite
  `[out][in]` matrix, i.e. 4x16 tiles of the Keras `[in][out]` kernel) zeroed
  at random; and three MobileNet-like CONV_2D layers (1x1 28x28x128->128,
  3x3 28x28x64->64, 1x1 14x14x256->256; filter `[out][kh][kw][in]`, blocks of
  16 output channels x 4 consecutive entries of `kh*kw*in`), dense and 80%
  block-sparse. Each layer is a one-node full-int8 `.tflite` (int8 input and
  output, ReLU fused), run by five interpreters: ours as deployed (`KernelDelegate(
  kernel="auto")`: its cost model claims the layer only where it expects to win
  on this CPU), ours on every layer (`nodes="all"`), ours with the dense kernel
  forced (`kernel="dense"`), the default interpreter (XNNPACK) and the builtin
  kernels without XNNPACK.
* End to end: the small CNN and LeNet-300-100, trained on MNIST-5k, dense or
  pruned to 80% and 90% in 16x4 blocks (`conv1` and `logits` kept dense, as in
  `tfcompress/demo.py`), (pruning-preserving) QAT, exported to int8 with int8
  I/O. Latency at batch 1 with our delegate (its nodes claimed first, XNNPACK
  taking the rest, as `TFLiteModel(use_tfcompress_kernels=True)` does) as
  deployed, on every layer, with the dense kernel, and on the nodes
  `tfcompress.kernels.autotune` chose; with the default interpreter and with
  the builtin kernels; the accuracy of each on the 1,000 test images, whether
  the predictions and raw int8 outputs are identical, and per node whether our
  delegate claimed it, with which kernel, and the cost model's estimate.

Results go to `benchmarks/results/kernels-<CPU kind>.{json,md}`, one pair per
kind of CPU measured (`tfcompress.kernels.host_kind()`: `avx2`,
`avx512vnni-amx`, ...), so figures from other CPUs stay next to this one's.

How: the machine is shared and noisy, so the interpreters of one case are
timed interleaved: for R rounds, each interpreter in turn (the order rotated
every round) runs N `invoke()` calls (after a warm-up), and the round's median
is kept. A variant's latency is the median over the rounds of those medians
(and their minimum); a speed-up is the median over the rounds of the ratio of
two variants' medians, measured side by side in the same round.

Run from the repository root (needs the kernel library: `pip install -e .`):
    python -m benchmarks.kernels [--quick] [--rounds R] [--invokes N]
        [--pretrain_epochs E] [--prune_epochs E] [--qat_epochs E] [--output_dir DIR]
        [--mobilenet_images N] [--mobilenet_checked N] [--mobilenet_alphas A,B]
        [--only_mobilenet]
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

import benchmarks.harness as harness
from benchmarks.kernel_mobilenet import (
    MOBILENET_HEADERS,
    mobilenet_rows,
    mobilenet_targets,
    node_lines,
    run_mobilenet,
)
from benchmarks.kernel_models import (
    BLOCK,
    CALIBRATION,
    conv_model,
    fc_model,
    int8_tflite,
    layer_cases,
)
from benchmarks.kernel_report import describe, layer_rows, targets
from benchmarks.kernel_runner import (
    LABELS,
    OURS,
    VARIANTS,
    as_float,
    cpu_flags,
    interleaved,
    interpreter,
    nodes,
    raw_outputs,
    summarize,
    tuned_interpreter,
)
from tfcompress.datasets import load_mnist5k
from tfcompress.demo import compile_classifier, kept_dense
from tfcompress.export import TFLiteFile, export_tflite
from tfcompress.kernels import autotune, best_isa, host_kind
from tfcompress.models import lenet_300_100, small_cnn
from tfcompress.pruning import (
    PolynomialDecay,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import quantize_model
from tfcompress.reporting.table import render_table

E2E_SPARSITIES = (0.0, 0.8, 0.9)

# --------------------------------------------------------------------------- per layer


def progress(label: str, record: dict, extra: str) -> None:
    """One line per measured case: latencies, our speed-up over XNNPACK, and `extra`."""
    latencies = ", ".join(
        f"{LABELS[n]} {v['median']:.1f} us" for n, v in record["latency_us"].items()
    )
    speedup = record["speedups"]["ours_vs_xnnpack"]["median"]
    print(f"{label}: {latencies}; ours vs XNNPACK {speedup:.2f}x; {extra}", flush=True)


def run_layers(args) -> list[dict]:
    records = []
    contents: dict[tuple, bytes] = {}
    for i, case in enumerate(layer_cases()):
        key = (case["layer"], case["sparsity"], case["batch"])
        if key not in contents:
            seed = args.seed * 1000 + i
            contents[key] = (
                fc_model(case["sparsity"], seed, case["batch"])
                if case["kind"] == "fc"
                else conv_model(*case["conv"], case["sparsity"], seed)
            )
        models = {name: interpreter(contents[key], name) for name in VARIANTS}
        q = np.random.default_rng(i).integers(-128, 128, size=case["shape"], dtype=np.int8)
        x = as_float(models["builtin"], q)  # quantized back to q by every interpreter
        checked = {**models, "reference": interpreter(contents[key], "reference")}
        outputs = {name: model.run_batch(x, raw=True) for name, model in checked.items()}
        medians = interleaved(models, x, args.rounds, args.invokes, args.warmup)
        claimed = nodes(models["ours"])
        record = {
            "layer": case["layer"],
            "batch": case["batch"],
            "sparsity": case["sparsity"],
            "input_shape": list(case["shape"]),
            "tflite_bytes": len(contents[key]),
            "ours_nodes": claimed,
            "ours_dense_nodes": nodes(models["ours_dense"]),
            "ours_counters": models["ours"].kernels.counters(),
            "outputs_differing_from_reference": {
                name: int(np.sum(outputs[name] != outputs["reference"])) for name in VARIANTS
            },
            "output_elements": int(outputs["reference"].size),
            **summarize(medians),
        }
        records.append(record)
        progress(
            f"{case['layer']} batch {case['batch']} sparsity {case['sparsity']:.0%}",
            record,
            "kernel " + ", ".join(n["kernel"] for n in claimed),
        )
    return records


def invoke_floor(args) -> dict:
    """`invoke()` of a one-node 16x16 FC (builtin kernels): the Python call's own cost."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(16)(inputs))
    content = int8_tflite(model, rng.normal(size=(CALIBRATION, 16)).astype("float32"))
    x = rng.normal(size=(1, 16)).astype("float32")
    medians = interleaved(
        {"builtin": interpreter(content, "builtin")}, x, args.rounds, args.invokes, args.warmup
    )
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
        if sparsity == 0.0:  # dense: QAT straight from the pretrained model
            qat = quantize_model(base)
        else:
            schedule = PolynomialDecay(
                0.0, sparsity, begin_step=0, end_step=steps // 2, frequency=10
            )
            wrapped = prune_low_magnitude(base, schedule, block_size=BLOCK, skip=kept_dense(base))
            pruned = compile_classifier(wrapped)
            pruned.fit(
                data.x_train,
                data.y_train,
                epochs=args.prune_epochs,
                batch_size=64,
                verbose=2,
                callbacks=[UpdatePruningStep()],
            )
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
            start = time.perf_counter()
            tuned = autotune(content, data.x_test[:1], rounds=args.rounds, invokes=args.invokes)
            autotune_s = time.perf_counter() - start
            models = {name: interpreter(content, name) for name in VARIANTS}
            models["ours_tuned"] = tuned_interpreter(content, tuned)
            checked = {**models, "reference": interpreter(content, "reference")}
            raw = {name: raw_outputs(model, data.x_test) for name, model in checked.items()}
            # The timed input: the first test image.
            medians = interleaved(models, data.x_test[:1], args.rounds, args.invokes, args.warmup)
            claimed = nodes(models["ours"])
            for node in claimed:
                node["layer"] = names.get((node["n"], node["k"]), "?")
            accuracy = {
                name: float(np.mean(out.argmax(-1) == data.y_test)) for name, out in raw.items()
            }
            same = {}
            for ours in OURS:
                for ref in ("xnnpack", "builtin", "reference"):
                    same[f"{ours}_vs_{ref}"] = {
                        "argmax_differs": int(np.sum(raw[ours].argmax(-1) != raw[ref].argmax(-1))),
                        "int8_outputs_differ": int(np.sum(np.any(raw[ours] != raw[ref], axis=-1))),
                    }
            ops = [op.name for op in TFLiteFile(content).ops]
            record = {
                "model": base.name,
                "sparsity": sparsity,
                "tflite_bytes": len(content),
                "float_accuracy": trained["float_accuracy"],
                "keras_qat_accuracy": variant["keras_qat_accuracy"],
                "tflite_accuracy": accuracy,
                "differences": same,
                "ops": ops,
                "ours_nodes": claimed,
                "ours_dense_nodes": nodes(models["ours_dense"]),
                "ours_counters": models["ours"].kernels.counters(),
                "tuned_nodes": tuned,
                "autotune_s": autotune_s,
                "train_s": train_s,
                **summarize(medians),
            }
            records.append(record)
            progress(
                f"{base.name} {sparsity:.0%}",
                record,
                "accuracy " + ", ".join(f"{LABELS[n]} {a:.3f}" for n, a in accuracy.items()),
            )
    return records


def resolve(args) -> argparse.Namespace:
    """Fills the flags left unset with the full or the `--quick` defaults."""
    full = {
        "rounds": 7,
        "invokes": 200,
        "warmup": 20,
        "pretrain_epochs": 3,
        "prune_epochs": 2,
        "qat_epochs": 1,
        "mobilenet_images": 512,
    }
    quick = {
        "rounds": 3,
        "invokes": 30,
        "warmup": 5,
        "pretrain_epochs": 1,
        "prune_epochs": 1,
        "qat_epochs": 1,
        "mobilenet_images": 128,
    }
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
    parser.add_argument(
        "--mobilenet_images",
        type=int,
        help="MNIST images (upsampled to 96x96) MobileNetV2 trains on, one epoch per stage "
        "(default 512; quick 128)",
    )
    parser.add_argument(
        "--mobilenet_checked",
        type=int,
        default=200,
        help="test images whose MobileNetV2 outputs are compared (default 200)",
    )
    parser.add_argument(
        "--mobilenet_alphas",
        type=lambda text: [float(a) for a in text.split(",")],
        default=[0.35, 1.0],
        help="MobileNetV2 widths (default 0.35,1.0)",
    )
    parser.add_argument(
        "--only_mobilenet",
        action="store_true",
        help="run only the MobileNetV2 case (results: kernels-<CPU kind>-mobilenetv2.{json,md})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cpu_tag",
        default="",
        help="added to the file names, for two CPUs of one kind (e.g. zen5): "
        "kernels-<CPU kind>-<tag>.{json,md}",
    )
    parser.add_argument(
        "--output_dir",
        default=harness.RESULTS_DIR,
        help="where kernels-<CPU kind>.json and .md go (default benchmarks/results)",
    )
    args = resolve(parser.parse_args())
    if (
        min(
            args.rounds,
            args.invokes,
            args.pretrain_epochs,
            args.prune_epochs,
            args.qat_epochs,
            args.mobilenet_images,
            args.mobilenet_checked,
        )
        < 1
        or args.warmup < 0
    ):
        parser.error("rounds, invokes, epochs and image counts must be >= 1, warmup >= 0")

    start = time.perf_counter()
    machine = {
        "cpu": harness.cpu_model(),
        "cpu_flags": cpu_flags(),
        "isa": best_isa(),
        "host": host_kind(),
    }
    print(f"CPU {machine['cpu']}, our kernel path {machine['isa']}", flush=True)
    name = harness.kernel_table_name(machine["host"], args.cpu_tag)
    if args.only_mobilenet:
        print(write_mobilenet(name, run_mobilenet(args), args, machine))
        return
    floor = invoke_floor(args)
    layers = run_layers(args)
    e2e = run_end_to_end(args)
    mobilenet = run_mobilenet(args)
    minutes = (time.perf_counter() - start) / 60

    headers = [
        "layer",
        "batch",
        "block sparsity",
        "block density",
        "kernel (auto)",
        "ours auto (us)",
        "ours all layers (us)",
        "ours dense (us)",
        "XNNPACK (us)",
        "builtin (us)",
        "ours auto vs XNNPACK",
        "all layers vs XNNPACK",
        "dense vs XNNPACK",
        "ours vs builtin",
        "elements != reference (ours auto, all layers, dense, XNNPACK, builtin)",
    ]
    notes = describe(args, layers, e2e, floor, machine, minutes)
    notes += "\n\n" + render_table(MOBILENET_HEADERS, mobilenet_rows(mobilenet), markdown=True)
    notes += "\n\n" + render_table(
        ["target", "measured", "verdict"], mobilenet_targets(mobilenet), markdown=True
    )
    notes += f"\n\nPer node: {name}-mobilenetv2.md."
    records = [
        {
            "args": vars(args),
            "machine": machine,
            "invoke_floor_us": floor,
            "runtime_min": minutes,
            "layers": layers,
            "end_to_end": e2e,
            "mobilenet_v2": mobilenet,
            "targets": [
                dict(zip(["target", "measured", "verdict"], row))
                for row in targets(layers, e2e) + mobilenet_targets(mobilenet)
            ],
        }
    ]
    paths = harness.write_results(
        name,
        "int8 kernels: ours vs XNNPACK vs builtin (1 thread)",
        headers,
        layer_rows(layers),
        records,
        notes,
        output_dir=os.path.abspath(args.output_dir),
    )
    with open(paths[1], encoding="utf-8") as f:
        print(f.read())
    print(write_mobilenet(name, mobilenet, args, machine))


def write_mobilenet(name: str, mobilenet: list[dict], args, machine: dict) -> str:
    """Writes `<name>-mobilenetv2.{json,md}` (table, targets, per-node lines); returns the md."""
    notes = render_table(
        ["target", "measured", "verdict"], mobilenet_targets(mobilenet), markdown=True
    )
    notes += "\n\n" + MOBILENET_METHOD.format(args=args)
    paths = harness.write_results(
        name + "-mobilenetv2",
        "MobileNetV2 int8 end to end: ours vs XNNPACK (1 thread)",
        MOBILENET_HEADERS,
        mobilenet_rows(mobilenet),
        [{"args": vars(args), "machine": machine, "mobilenet_v2": mobilenet}],
        notes + "\n\n" + "\n\n".join(node_lines(r) for r in mobilenet),
        output_dir=os.path.abspath(args.output_dir),
    )
    with open(paths[1], encoding="utf-8") as f:
        return f.read()


MOBILENET_METHOD = (
    "`keras.applications.MobileNetV2(alpha, 96x96x1, weights=None, 10 classes)` on "
    "MNIST-5k upsampled to 96x96, trained on {args.mobilenet_images} images for one epoch per "
    "stage (pretrain; 1x1 convs block-pruned in 16x4 blocks with the first conv, depthwise "
    "convs and classifier dense; prune-preserving QAT; 0%: QAT of the pretrained model), "
    "int8 with int8 I/O. Latency: batch 1, median over {args.rounds} interleaved rounds of "
    "the median of {args.invokes} `invoke()` calls; speed-ups: median (min-max) of the "
    "per-round ratios. `auto`: the cost model's choice (kernels/src/cost_model.h); `all`: "
    'every node ours (`nodes="all"`, depthwise included); `autotuned`: '
    "`tfcompress.kernels.autotune`'s choice on this machine. Outputs compared on "
    "{args.mobilenet_checked} test images against TFLite's reference kernels (`BUILTIN_REF`) "
    "and XNNPACK."
)


if __name__ == "__main__":
    main()
