"""QAT, low-bit weights and clustering on MNIST-5k, tfcompress side by side with tfmot in one run.

For LeNet-300-100 and the small CNN both sides start from the same weights
(trained once here in Keras 3 and handed to the tfmot process as an NPZ, as in
benchmarks/pruning.py) and fine-tune every variant on the same data, in the same
pre-shuffled order, for the same number of steps with the same optimizer:

* float: the pretrained model, exported as float32;
* post-training int8: calibrated on 200 training images;
* QAT int8: `quantize_model`, fine-tuned, exported to int8 from its fake-quant ranges;
* QAT 4-bit weights (tfcompress only: tfmot has no simple 4-bit path);
* clustered-16: k-means++ clustering, fine-tuned, stripped, exported as float32 and
  as dynamic-range; tfcompress both per tensor (tfmot's setting) and with its default
  (per output channel for convolution kernels);
* pruned 80% + PQAT: unstructured magnitude pruning, stripped, pruning-preserving QAT,
  exported to int8.

The tiny MobileNet (BatchNorm, ReLU6, a residual Add) runs on the tfcompress
side only. The tfmot side runs in its own process
(benchmarks/tfmot_quantization_peer.py, it needs tf_keras) and only writes
`.tflite` files and Keras accuracies: every `.tflite` of both sides is measured
here, by the same helper (`tfcompress.report`), one after the other.

Run from the repository root (needs the `tfmot` extra for the peer rows):
    python -m benchmarks.quantization [--pretrain_epochs N] [--finetune_epochs N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

import keras
import numpy as np

import tfcompress as tc
from benchmarks.harness import write_results
from benchmarks.quantization_report import (
    BATCH,
    CALIBRATION,
    CLUSTERS,
    MODELS,
    PEERS,
    ROWS,
    SPARSITY,
    describe,
    summarize,
    table_rows,
)
from tfcompress.clustering import cluster_weights, strip_clustering
from tfcompress.quantization import quantize_model


def compiled(model: keras.Model, lr: float) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def fit(model: keras.Model, x, y, lr: float, callbacks=()) -> keras.Model:
    """One pass over the pre-shuffled `(x, y)`: the same steps, in the same order, on both sides."""
    compiled(model, lr).fit(
        x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=list(callbacks)
    )
    return model


def clone_with_weights(model: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def keras_accuracy(model: keras.Model, data) -> float:
    logits = model.predict(data.x_test, batch_size=256, verbose=0)
    return float(np.mean(logits.argmax(-1) == data.y_test))


def has_conv(model: keras.Model) -> bool:
    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    return any(isinstance(layer, kinds) for layer in model.layers)


def attempt(key: str, make: Callable[[], tuple[bytes, float | None]]) -> dict:
    """Runs one variant; a failure is recorded (and printed) instead of stopping the benchmark."""
    try:
        content, accuracy = make()
        return {"content": content, "keras_accuracy": accuracy}
    except Exception as err:  # noqa: BLE001 - the benchmark reports API failures as rows
        print(f"tfcompress variant {key!r} failed:", file=sys.stderr)
        traceback.print_exc()
        return {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}


def ours(base: keras.Model, data, orders: dict, args) -> dict[str, dict]:
    """Every tfcompress variant of `base`: key -> {"content", "keras_accuracy"} or {"error"}."""
    x_ft, y_ft = orders["finetune"]
    lr = args.finetune_lr
    out = {
        "float": attempt("float", lambda: (tc.export_tflite(base), keras_accuracy(base, data))),
        "ptq_int8": attempt(
            "ptq_int8",
            lambda: (
                tc.export_tflite(base, mode="int8", representative_data=data.x_train[:CALIBRATION]),
                None,
            ),
        ),
    }

    def float_finetuned():
        model = fit(clone_with_weights(base), x_ft, y_ft, lr)
        return tc.export_tflite(model), keras_accuracy(model, data)

    out["float_finetuned"] = attempt("float_finetuned", float_finetuned)

    def qat(scheme: str):
        def make():
            model = fit(quantize_model(clone_with_weights(base), scheme=scheme), x_ft, y_ft, lr)
            return tc.export_tflite(model, mode="int8"), keras_accuracy(model, data)

        return make

    out["qat_int8"] = attempt("qat_int8", qat("default_8bit"))
    out["qat_4bit"] = attempt("qat_4bit", qat("default_4bit"))

    per_channel_options = {"": False, "auto_": None} if has_conv(base) else {"": False}
    for prefix, per_channel in per_channel_options.items():
        plain = {}  # the stripped model, clustered and fine-tuned once for both exports

        def cluster(mode, per_channel=per_channel, plain=plain):
            if "model" not in plain:
                clustered = cluster_weights(
                    clone_with_weights(base),
                    number_of_clusters=CLUSTERS,
                    cluster_centroids_init="kmeans++",
                    cluster_per_channel=per_channel,
                )
                plain["model"] = strip_clustering(fit(clustered, x_ft, y_ft, lr))
            model = plain["model"]
            return tc.export_tflite(model, mode=mode), keras_accuracy(model, data)

        for mode in ("float32", "dynamic"):
            key = f"cluster_{prefix}{mode}"
            out[key] = attempt(key, lambda mode=mode, cluster=cluster: cluster(mode))

    def pqat():
        schedule = tc.PolynomialDecay(
            0.0, SPARSITY, 0, orders["prune_end_step"], frequency=args.prune_frequency
        )
        pruned = tc.prune_low_magnitude(clone_with_weights(base), schedule, block_size=(1, 1))
        x_pr, y_pr = orders["prune"]
        fit(pruned, x_pr, y_pr, args.prune_lr, [tc.UpdatePruningStep()])
        model = quantize_model(tc.strip_pruning(pruned), scheme="prune_preserve_8bit")
        fit(model, x_ft, y_ft, lr)
        return tc.export_tflite(model, mode="int8"), keras_accuracy(model, data)

    out["pqat_int8"] = attempt("pqat_int8", pqat)
    return out


def run_tfmot(name, base, data, orders, args, seed, workdir) -> dict[str, dict]:
    """The tfmot variants of `base` from the peer process, read back as {"content", ...}."""
    weights = base.get_weights()
    npz = os.path.join(workdir, f"{name}_{seed}.npz")
    np.savez(
        npz,
        n_weights=len(weights),
        x_test=data.x_test,
        y_test=data.y_test,
        calibration=data.x_train[:CALIBRATION],
        x_finetune=orders["finetune"][0],
        y_finetune=orders["finetune"][1],
        x_prune=orders["prune"][0],
        y_prune=orders["prune"][1],
        **{f"w{i}": w for i, w in enumerate(weights)},
    )
    job = {
        "model": name,
        "npz": npz,
        "seed": seed,
        "out": workdir,
        "clusters": CLUSTERS,
        "sparsity": SPARSITY,
        "prune_end_step": orders["prune_end_step"],
        "prune_frequency": args.prune_frequency,
        "prune_lr": args.prune_lr,
        "finetune_lr": args.finetune_lr,
        "result": os.path.join(workdir, f"{name}_{seed}.json"),
    }
    job_path = os.path.join(workdir, f"{name}_{seed}_job.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, "-m", "benchmarks.tfmot_quantization_peer", job_path], check=True, env=env
    )
    with open(job["result"]) as f:
        rows = json.load(f)["rows"]
    out = {}
    for key, row in rows.items():
        with open(row["tflite"], "rb") as f:
            out[key] = {"content": f.read(), "keras_accuracy": row["keras_accuracy"]}
    return out


def measure(content: bytes, data, latency_runs: int) -> dict:
    result = tc.report(tflite=content, data=(data.x_test, data.y_test), latency_runs=latency_runs)
    s = result.summary
    uniques = [op.unique for op in result.ops if op.unique is not None]
    return {
        "tflite_accuracy": s["tflite_accuracy"],
        "tflite_bytes": s["tflite_bytes"],
        "gzip_bytes": s["gzip_bytes"],
        "latency_ms": s["latency_ms"],
        "weight_sparsity": s["tflite_sparsity"],
        "max_unique_per_kernel": max(uniques) if uniques else None,
    }


def data_orders(data, args, seed: int) -> dict:
    """The pre-shuffled fine-tuning and pruning data both sides train on."""
    rng = np.random.default_rng(seed)
    n = len(data.x_train)

    def order(epochs):
        idx = np.concatenate([rng.permutation(n) for _ in range(epochs)])
        return data.x_train[idx], data.y_train[idx]

    prune = order(args.prune_epochs)
    return {
        "finetune": order(args.finetune_epochs),
        "prune": prune,
        "prune_end_step": int(0.7 * -(-len(prune[0]) // BATCH)),
    }


def run_seed(seed: int, models: list[str], args, workdir: str, has_tfmot: bool) -> list[dict]:
    """Split, pretraining, both sides' variants and their measurements for one seed."""
    data = tc.datasets.load_mnist5k(seed=seed)
    orders = data_orders(data, args, seed)
    records = []
    for model_name in models:
        builder = getattr(tc.models, model_name)
        keras.utils.set_random_seed(seed)
        base = compiled(builder(), 1e-3)
        base.fit(
            data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=BATCH, verbose=2
        )
        name = base.name
        sides = {"tfcompress": ours(base, data, orders, args)}
        if has_tfmot and name in PEERS:
            sides["tfmot"] = run_tfmot(name, base, data, orders, args, seed, workdir)
        for side, variants in sides.items():  # measured here, one after the other
            for key in ROWS:
                if key not in variants:
                    continue
                row = variants[key]
                record = {
                    "seed": seed,
                    "model": name,
                    "side": side,
                    "key": key,
                    "method": ROWS[key],
                    "keras_accuracy": row.get("keras_accuracy"),
                    "prune_end_step": orders["prune_end_step"],
                }
                if "error" in row:
                    record["error"] = row["error"]
                else:
                    kept = os.path.join(workdir, f"{name}_{seed}_{side}_{key}.tflite")
                    with open(kept, "wb") as f:
                        f.write(row["content"])
                    record.update(measure(row["content"], data, args.latency_runs))
                records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pretrain_epochs", type=int, default=8)
    parser.add_argument("--finetune_epochs", type=int, default=2)
    parser.add_argument("--prune_epochs", type=int, default=2)
    parser.add_argument("--prune_frequency", type=int, default=10)
    parser.add_argument("--finetune_lr", type=float, default=1e-4)
    parser.add_argument("--prune_lr", type=float, default=1e-3)
    parser.add_argument("--latency_runs", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (split, init, order)")
    parser.add_argument(
        "--multi_seed_models",
        nargs="*",
        default=["lenet_300_100"],
        help="models run for every seed; the others for seed 0 only",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    has_tfmot = importlib.util.find_spec("tensorflow_model_optimization") is not None
    if not has_tfmot:
        print("tfmot is not installed (pip install '.[tfmot]'): peer rows skipped")
    workdir = tempfile.mkdtemp(prefix="tfcompress-quant-bench-")
    print(f"Every .tflite of this run is kept in {workdir}")
    records = []
    for seed in range(args.seeds):
        models = MODELS if seed == 0 else [m for m in MODELS if m in args.multi_seed_models]
        records += run_seed(seed, models, args, workdir, has_tfmot)
    summary = summarize(records)
    minutes = (time.perf_counter() - start) / 60

    headers = [
        "model",
        "method",
        "side",
        "seeds",
        ".tflite acc.",
        "Keras acc.",
        ".tflite bytes",
        "gzip bytes",
        "latency (ms)",
        "weight sparsity",
        "max distinct",
    ]
    notes = describe(args, records[0]["prune_end_step"], summary, minutes)
    write_results(
        "quantization",
        "Quantization and clustering: tfcompress vs tfmot",
        headers,
        table_rows(summary),
        [{"args": vars(args), "runtime_min": minutes, "summary": summary, "runs": records}],
        notes,
    )
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "quantization.md")
    with open(path, encoding="utf-8") as f:
        print(f.read())


if __name__ == "__main__":
    main()
