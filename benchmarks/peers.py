"""tfcompress side by side with LiteRT's ai-edge-quantizer and PQuantML on MNIST-5k.

For LeNet-300-100 and the small CNN, one pretrained Keras 3 model (seed 0) is
compressed three ways:

* tfcompress: post-training int8, QAT int8, QAT 4-bit weights and 80% pruning
  with pruning-preserving QAT (int8), each fine-tuned on the same pre-shuffled
  data;
* ai-edge-quantizer (LiteRT's post-training quantizer, its own venv and
  process, benchmarks/litert_quantizer_peer.py): its recipes static int8,
  dynamic int8 / int4 and weight-only int8 / int4, applied to the float
  `.tflite` Keras writes with `model.export(format="litert")`;
* PQuantML (`pquant-ml`, Keras 3, its own venv and process,
  benchmarks/pquant_peer.py): PDP pruning to 80% with its 8-bit fixed-point
  weights, trained with its loop on the same data. It has no TFLite export: its
  compressed weights are copied into the plain model, exported as float32 (its
  exact values) and as int8 by the TFLite converter (calibrated as ours).

Every `.tflite` is measured here by the same helper (`tfcompress.report`), one
after the other. A peer whose venv is missing is skipped and said so.

Run from the repository root, after `pip install -e ".[peers]"` (or with each peer's
own venv given):
    python -m benchmarks.peers [--aeq_python PYTHON] [--pquant_python PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import keras
import numpy as np

import tfcompress as tc
from benchmarks.harness import write_results
from benchmarks.quantization import clone_with_weights, compiled, fit, keras_accuracy
from benchmarks.quantization_report import BATCH

CALIBRATION = 200
SPARSITY = 0.8
MODELS = ("lenet_300_100", "small_cnn")
AEQ_ROWS = {
    "static_wi8_ai8": "ai-edge-quantizer static int8 (weights and activations)",
    "dynamic_wi8_afp32": "ai-edge-quantizer dynamic int8",
    "dynamic_wi4_afp32": "ai-edge-quantizer dynamic int4",
    "weight_only_wi8_afp32": "ai-edge-quantizer weight-only int8",
    "weight_only_wi4_afp32": "ai-edge-quantizer weight-only int4",
}
OUR_ROWS = {
    "float": "float32 (the starting point)",
    "ptq_int8": "tfcompress post-training int8",
    "qat_int8": "tfcompress QAT int8",
    "qat_4bit": "tfcompress QAT 4-bit weights, int8 activations",
    "pqat_int8": "tfcompress pruned 80% + PQAT int8",
}
PQUANT_ROWS = {
    "pquant_float32": "PQuantML PDP 80% + 8-bit fixed point, float32 export",
    "pquant_int8": "PQuantML PDP 80% + 8-bit fixed point, int8 export",
}


def cpu_flags() -> dict:
    """Whether the CPU has the int8 instructions the runtimes may use."""
    flags = set()
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {flag: flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")}


def ours(base: keras.Model, data, order, args) -> dict[str, dict]:
    """tfcompress's variants: key -> {"content", "keras_accuracy"}."""
    x, y = order
    calibration = data.x_train[:CALIBRATION]
    out = {
        "float": {"content": tc.export_tflite(base), "keras_accuracy": keras_accuracy(base, data)},
        "ptq_int8": {
            "content": tc.export_tflite(base, mode="int8", representative_data=calibration),
            "keras_accuracy": None,
        },
    }
    for key, scheme in (("qat_int8", "default_8bit"), ("qat_4bit", "default_4bit")):
        model = fit(
            tc.quantize_model(clone_with_weights(base), scheme=scheme), x, y, args.finetune_lr
        )
        out[key] = {
            "content": tc.export_tflite(model, mode="int8"),
            "keras_accuracy": keras_accuracy(model, data),
        }
    end_step = int(0.7 * -(-len(x) // BATCH))
    schedule = tc.PolynomialDecay(0.0, SPARSITY, 0, end_step, frequency=10)
    pruned = tc.prune_low_magnitude(clone_with_weights(base), schedule)
    fit(pruned, x, y, args.prune_lr, [tc.UpdatePruningStep()])
    model = tc.quantize_model(tc.strip_pruning(pruned), scheme="prune_preserve_8bit")
    fit(model, x, y, args.finetune_lr)
    out["pqat_int8"] = {
        "content": tc.export_tflite(model, mode="int8"),
        "keras_accuracy": keras_accuracy(model, data),
    }
    return out


def run_peer(python: str, module: str, job: dict, workdir: str, name: str) -> dict:
    """Runs `module` with `python` on `job`; returns its result JSON."""
    job_path = os.path.join(workdir, f"{name}_job.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    subprocess.run([python, "-m", module, job_path], check=True, env=env)
    with open(job["result"]) as f:
        return json.load(f)


def litert_quantizer(base, data, workdir, python) -> tuple[dict, dict]:
    float_path = os.path.join(workdir, f"{base.name}_litert_float.tflite")
    base.export(float_path, format="litert", verbose=False)
    calibration = os.path.join(workdir, f"{base.name}_calibration.npz")
    np.savez(calibration, x=data.x_train[:CALIBRATION])
    job = {
        "float_model": float_path,
        "calibration": calibration,
        "out": os.path.join(workdir, f"{base.name}_aeq"),
        "result": os.path.join(workdir, f"{base.name}_aeq.json"),
    }
    result = run_peer(python, "benchmarks.litert_quantizer_peer", job, workdir, f"{base.name}_aeq")
    variants = {}
    for key, row in result["rows"].items():
        if "error" in row:
            variants[key] = {"error": row["error"]}
        else:
            with open(row["tflite"], "rb") as f:
                variants[key] = {"content": f.read(), "keras_accuracy": None}
    return variants, result["versions"]


def pquant(base, data, order, workdir, python, args) -> tuple[dict, dict]:
    model_path = os.path.join(workdir, f"{base.name}.keras")
    base.save(model_path)
    npz = os.path.join(workdir, f"{base.name}_pquant_data.npz")
    np.savez(npz, x=order[0], y=order[1], x_test=data.x_test, y_test=data.y_test)
    job = {
        "model": model_path,
        "npz": npz,
        "sparsity": SPARSITY,
        "epochs": args.pquant_epochs,
        "fine_tuning_epochs": 1,
        "lr": args.prune_lr,
        "batch": BATCH,
        "weights": os.path.join(workdir, f"{base.name}_pquant_weights.npz"),
        "result": os.path.join(workdir, f"{base.name}_pquant.json"),
    }
    result = run_peer(python, "benchmarks.pquant_peer", job, workdir, f"{base.name}_pquant")
    arrays = np.load(job["weights"])
    plain = clone_with_weights(base)
    layers = [
        layer
        for layer in plain.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    ]
    for i, layer in enumerate(layers):
        layer.set_weights([arrays[f"kernel_{i}"], arrays[f"bias_{i}"]])
    accuracy = result["keras_accuracy"]
    calibration = data.x_train[:CALIBRATION]
    variants = {
        "pquant_float32": {"content": tc.export_tflite(plain), "keras_accuracy": accuracy},
        "pquant_int8": {
            "content": tc.export_tflite(plain, mode="int8", representative_data=calibration),
            "keras_accuracy": accuracy,
        },
    }
    return variants, {**result["versions"], "train_seconds": result["train_seconds"]}


def measure(content: bytes, data, latency_runs: int) -> dict:
    result = tc.report(tflite=content, data=(data.x_test, data.y_test), latency_runs=latency_runs)
    s = result.summary
    return {
        "tflite_accuracy": s["tflite_accuracy"],
        "tflite_bytes": s["tflite_bytes"],
        "gzip_bytes": s["gzip_bytes"],
        "latency_ms": s["latency_ms"],
        "weight_sparsity": s["tflite_sparsity"],
    }


def attempt(side: str, make) -> tuple[dict, dict]:
    """A peer's variants, or one error row when the peer fails as a whole."""
    try:
        return make()
    except Exception as err:  # noqa: BLE001 - a peer that fails is reported, not fatal
        traceback.print_exc()
        return {"run": {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}}, {}


def run_model(name: str, data, order, args, workdir: str, versions: dict) -> list[dict]:
    keras.utils.set_random_seed(0)
    base = compiled(getattr(tc.models, name)(), 1e-3)
    base.fit(data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=BATCH, verbose=2)
    sides = {"tfcompress": (ours(base, data, order, args), OUR_ROWS)}
    peers = (
        (
            "ai-edge-quantizer",
            args.aeq_python,
            "ai_edge_quantizer",
            lambda: litert_quantizer(base, data, workdir, args.aeq_python),
            AEQ_ROWS,
        ),
        (
            "PQuantML",
            args.pquant_python,
            "pquant",
            lambda: pquant(base, data, order, workdir, args.pquant_python, args),
            PQUANT_ROWS,
        ),
    )
    for side, python, module, make, labels in peers:
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        if found.returncode != 0:
            missing = f"not run: {python} cannot import {module} (pip install '.[peers]')"
            print(missing)
            sides[side] = ({"run": {"error": missing}}, labels)
            continue
        variants, peer_versions = attempt(side, make)
        versions.setdefault(side, {}).update(peer_versions)
        sides[side] = (variants, labels)
    records = []
    for side, (variants, labels) in sides.items():
        for key, row in variants.items():
            record = {
                "model": name,
                "side": side,
                "key": key,
                "method": labels.get(key, key),
                "keras_accuracy": row.get("keras_accuracy"),
            }
            if "error" in row:
                record["error"] = row["error"]
            else:
                with open(os.path.join(workdir, f"{name}_{side}_{key}.tflite"), "wb") as f:
                    f.write(row["content"])
                record.update(measure(row["content"], data, args.latency_runs))
            records.append(record)
    return records


def table_rows(records: list[dict]) -> list[list[str]]:
    def num(value, spec):
        return "-" if value is None else format(value, spec)

    rows = []
    for r in records:
        if "error" in r:
            rows.append([r["model"], r["method"], r["side"], r["error"], "-", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                r["model"],
                r["method"],
                r["side"],
                num(r["tflite_accuracy"], ".3f"),
                num(r["keras_accuracy"], ".3f"),
                num(r["tflite_bytes"], ",d"),
                num(r["gzip_bytes"], ",d"),
                num(r["latency_ms"], ".4f"),
                num(r["weight_sparsity"], ".3f"),
            ]
        )
    return rows


def describe(args, versions: dict, flags: dict, minutes: float) -> str:
    peers = "; ".join(
        f"{side}: " + ", ".join(f"{k} {v}" for k, v in v_.items() if k != "train_seconds")
        for side, v_ in versions.items()
    )
    return "\n\n".join(
        [
            "MNIST-5k (stratified 4,000 / 1,000), seed 0: one split, one pretraining, one data "
            "order, so accuracies differ by about +-0.01 (one standard error on 1,000 test "
            "images is ~0.007) without meaning anything.",
            f"Each model is pretrained once in Keras 3 for {args.pretrain_epochs} epochs (Adam "
            f"1e-3). tfcompress's QAT rows fine-tune it for {args.finetune_epochs} pass over the "
            f"training set (Adam {args.finetune_lr}); the pruned row prunes to 80% in one pass "
            f"(Adam {args.prune_lr}, polynomial schedule ending at 70% of it) and then runs "
            "pruning-preserving QAT for one pass. ai-edge-quantizer is post-training only (no "
            "fine-tuning): its rows start from the same float model, converted by Keras' own "
            '`model.export(format="litert")`; static int8 is calibrated on the same '
            f"{CALIBRATION} training images as tfcompress's post-training int8. PQuantML trains "
            f"its PDP pruning for {args.pquant_epochs} passes plus one fine-tuning pass on the "
            "same data (Adam "
            f"{args.prune_lr}); its Keras accuracy is its own model's, with its activation "
            "quantizers; its `.tflite` rows hold its compressed weights in the plain model "
            "(activations float or converter-calibrated int8), since PQuantML exports no "
            "TFLite (only ONNX / hls4ml).",
            "Columns: `.tflite acc.` is the converted file's top-1 on the 1,000 test images; "
            "`gzip bytes` is the file gzipped (what a download costs, and where zeros and "
            "shared values pay off); latency is the median of "
            f"{args.latency_runs} single-image runs of the LiteRT interpreter (XNNPACK, 1 "
            "thread); `weight sparsity` is the share of zeros in the file's weight tensors.",
            f"Peer versions: {peers}.",
            "CPU int8 instructions (from /proc/cpuinfo): "
            + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items())
            + ".",
            f"Runtime: {minutes:.1f} min; load average at the end "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (latency is only comparable "
            "within a run on an otherwise idle machine).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pretrain_epochs", type=int, default=3)
    parser.add_argument("--finetune_epochs", type=int, default=1)
    parser.add_argument("--pquant_epochs", type=int, default=2)
    parser.add_argument("--finetune_lr", type=float, default=1e-4)
    parser.add_argument("--prune_lr", type=float, default=1e-3)
    parser.add_argument("--latency_runs", type=int, default=300)
    parser.add_argument(
        "--aeq_python", default=sys.executable, help="a Python with ai-edge-quantizer"
    )
    parser.add_argument("--pquant_python", default=sys.executable, help="a Python with pquant-ml")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()

    start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="tfcompress-peers-bench-")
    print(f"Every .tflite of this run is kept in {workdir}")
    data = tc.datasets.load_mnist5k(seed=0)
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.permutation(len(data.x_train)) for _ in range(args.finetune_epochs)])
    order = (data.x_train[idx], data.y_train[idx])
    versions: dict = {}
    records = []
    for name in args.models:
        records += run_model(name, data, order, args, workdir, versions)
    minutes = (time.perf_counter() - start) / 60
    flags = cpu_flags()
    headers = [
        "model",
        "method",
        "side",
        ".tflite acc.",
        "Keras acc.",
        ".tflite bytes",
        "gzip bytes",
        "latency (ms)",
        "weight sparsity",
    ]
    write_results(
        "peers",
        "Peers: tfcompress vs ai-edge-quantizer and PQuantML",
        headers,
        table_rows(records),
        [
            {
                "args": vars(args),
                "runtime_min": minutes,
                "cpu_flags": flags,
                "peer_versions": versions,
                "runs": records,
            }
        ],
        describe(args, versions, flags, minutes),
    )
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "peers.md")
    with open(path, encoding="utf-8") as f:
        print(f.read())


if __name__ == "__main__":
    main()
