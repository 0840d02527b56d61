"""Low-rank factorization of the small CNN on MNIST-5k: energies and ranks, fine-tuning, int8.

For each seed the small CNN is pretrained (Adam 1e-3, batch 64), then every
variant is factorized from those weights with `tfcompress.factorize`, exported
to float32 `.tflite` and evaluated (before fine-tuning), fine-tuned with Adam
on the same data order, and exported and evaluated again. Controls: the
original model, and the original fine-tuned exactly like the variants. Two
variants and the original also go through QAT (`quantize_model`, one epoch)
to an int8 `.tflite`. Every `.tflite` of seed 0 is timed in this process,
round-robin over several rounds (batch 1, 1 thread, XNNPACK), so the latency
ratios are side by side. Finally the SVD itself: LAPACK's full SVD against
`randomized_svd` on the trained fc1 kernel (9216x128) and on a 4096x4096
Gaussian matrix.

Run from the repository root:
    python -m benchmarks.factorization [--seeds N] [--pretrain_epochs N] [--finetune_epochs N]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

import tfcompress as tc
from benchmarks.harness import write_results
from tfcompress.factorization import factorization_summary, factorize, randomized_svd
from tfcompress.factorization.svd import prefers_randomized
from tfcompress.reporting.table import render_table

BATCH = 64
DENSE_STACK = ("fc1", "logits")
FC1_MACS = 9216 * 128
ORIGINAL, CONTROL = "original", "original, fine-tuned like the variants (control)"
# label -> factorize() arguments
VARIANTS = {
    "fc1 energy 0.8": {"energy": {"fc1": 0.8}},
    "fc1 energy 0.5": {"energy": {"fc1": 0.5}},
    "fc1 rank 32": {"rank": {"fc1": 32}},
    "fc1 rank 16": {"rank": {"fc1": 16}},
    "fc1 rank 8": {"rank": {"fc1": 8}},
    "fc1 rank 16 + conv2 spatial rank 16": {"rank": {"fc1": 16, "conv2": 16}},
    "global budget: 10% of all kernel weights": {"compression": 0.1},
}
QAT_OF = (ORIGINAL, "fc1 rank 16", "fc1 rank 16 + conv2 spatial rank 16")


def compiled(model: keras.Model, lr: float) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def fit(model: keras.Model, data, epochs: int, lr: float, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)  # the same data order for every variant of a seed
    compiled(model, lr).fit(data.x_train, data.y_train, epochs=epochs, batch_size=BATCH, verbose=0)
    return model


def tflite_accuracy(content: bytes, data) -> float:
    return tc.TFLiteModel(content).evaluate(data.x_test, data.y_test)


def sizes(model: keras.Model) -> dict:
    layers = tc.report(model).layers
    return {
        "dense_stack_params": sum(r.params for r in layers if r.name in DENSE_STACK),
        "params": sum(r.params for r in layers),
        "macs": sum(r.macs for r in layers),
    }


def run_seed(seed: int, args) -> tuple[list[dict], dict[str, bytes], np.ndarray]:
    """One record per row; the `.tflite` contents by row label; the trained fc1 kernel."""
    data = tc.datasets.load_mnist5k(seed=seed)
    keras.utils.set_random_seed(seed)
    base = compiled(tc.models.small_cnn(), 1e-3)
    base.fit(data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=BATCH, verbose=0)
    records, contents = [], {}

    def add(label, model, before=None, ranks="-", kept=None):
        content = tc.export_tflite(model)
        contents[label] = content
        records.append(
            {
                "seed": seed,
                "variant": label,
                "mode": "float32",
                "ranks": ranks,
                **sizes(model),
                "tflite_bytes": len(content),
                "energy_kept": kept,
                "accuracy_before_finetuning": before,
                "accuracy": tflite_accuracy(content, data),
            }
        )

    def add_qat(label, model):
        qat = fit(tc.quantize_model(model), data, args.qat_epochs, 1e-4, seed + 1)
        content = tc.export_tflite(qat, mode="int8")
        contents[f"{label} + QAT int8"] = content
        records.append(
            {
                "seed": seed,
                "variant": f"{label} + QAT int8",
                "mode": "int8",
                "ranks": next(r["ranks"] for r in records if r["variant"] == label),
                **sizes(model),
                "tflite_bytes": len(content),
                "energy_kept": None,
                "accuracy_before_finetuning": None,
                "accuracy": tflite_accuracy(content, data),
            }
        )

    add(ORIGINAL, base)
    control = keras.models.clone_model(base)
    control.set_weights(base.get_weights())
    add(CONTROL, fit(control, data, args.finetune_epochs, args.finetune_lr, seed + 1))
    models = {ORIGINAL: base}
    for label, kwargs in VARIANTS.items():
        factorized = factorize(base, **kwargs)
        summary = factorization_summary(base, factorized)
        kept = {r["layer"]: 1 - r["kernel_error"] ** 2 for r in summary.rows}
        ranks = ", ".join(
            f"{r['layer']} {r['rank']} ({kept[r['layer']]:.0%})" for r in summary.rows
        )
        before = tflite_accuracy(tc.export_tflite(factorized), data)
        fit(factorized, data, args.finetune_epochs, args.finetune_lr, seed + 1)
        add(label, factorized, before, ranks, kept)
        models[label] = factorized
    for label in QAT_OF:
        add_qat(label, models[label])
    fc1_kernel = keras.ops.convert_to_numpy(base.get_layer("fc1").kernel)
    return records, contents, fc1_kernel


def latencies(contents: dict[str, bytes], rounds: int, runs: int) -> dict[str, float]:
    """Median over `rounds` of each model's median `invoke()` time, the models interleaved."""
    sample = tc.datasets.load_mnist5k().x_test[:1]
    runners = {label: tc.TFLiteModel(content, num_threads=1) for label, content in contents.items()}
    medians = {label: [] for label in contents}
    for _ in range(rounds):
        for label, runner in runners.items():
            medians[label].append(runner.latency(sample, runs=runs)["median_ms"])
    return {label: float(np.median(values)) for label, values in medians.items()}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def svd_timings(fc1_kernel: np.ndarray, large: int) -> list[dict]:
    """Full LAPACK SVD vs randomized SVD: seconds (best of a few runs) and the Frobenius error
    of the rank-r approximation relative to the optimal (Eckart-Young) one."""
    gaussian = np.random.default_rng(0).standard_normal((large, large))
    cases = [
        ("fc1 kernel (trained)", fc1_kernel, (16, 32)),
        (f"Gaussian {large}x{large}", gaussian, (64, 256)),
    ]
    out = []
    for name, matrix, ranks in cases:
        a = matrix.astype(np.float64)
        repeats = 5 if a.size < 4e6 else 1
        full_s = best_of(lambda a=a: np.linalg.svd(a, full_matrices=False), repeats)
        s = np.linalg.svd(a, compute_uv=False)
        for rank in ranks:
            rand_s = best_of(lambda a=a, rank=rank: randomized_svd(a, rank), 5)
            u, sv, vt = randomized_svd(a, rank)
            error = np.linalg.norm(a - (u * sv) @ vt) / np.sqrt((s[rank:] ** 2).sum())
            out.append(
                {
                    "matrix": name,
                    "shape": f"{a.shape[0]}x{a.shape[1]}",
                    "rank": rank,
                    "full_svd_s": full_s,
                    "randomized_s": rand_s,
                    "speedup": full_s / rand_s,
                    "error_vs_optimal": float(error),
                }
            )
    return out


def mean_range(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def summarize(records: list[dict], latency: dict[str, float]) -> list[dict]:
    labels = list(dict.fromkeys(r["variant"] for r in records))
    first = {r["variant"]: r for r in records if r["seed"] == records[0]["seed"]}
    original = [r["accuracy"] for r in records if r["variant"] == ORIGINAL]
    out = []
    for label in labels:
        rows = [r for r in records if r["variant"] == label]
        deltas = [round(100 * (r["accuracy"] - o), 1) for r, o in zip(rows, original)]
        out.append(
            {
                **first[label],
                "accuracy_runs": [r["accuracy"] for r in rows],
                "before_runs": [r["accuracy_before_finetuning"] for r in rows],
                "delta_points_runs": deltas,
                "delta_points": round(float(np.mean(deltas)), 2),
                "worst_delta_points": min(deltas),
                "latency_ms": latency[label],
                "latency_ratio": latency[ORIGINAL] / latency[label],
            }
        )
    return out


def table_rows(summary: list[dict]) -> list[list[str]]:
    stack = summary[0]["dense_stack_params"]
    return [
        [
            e["variant"],
            e["ranks"],
            f"{e['dense_stack_params']:,}",
            f"{stack / e['dense_stack_params']:.1f}x",
            f"{e['params']:,}",
            f"{e['macs']:,}",
            f"{e['tflite_bytes']:,}",
            f"{e['latency_ms']:.4f}",
            f"{e['latency_ratio']:.2f}x",
            mean_range(e["before_runs"]),
            mean_range(e["accuracy_runs"]),
            f"{e['delta_points']:+.1f}",
        ]
        for e in summary
    ]


def targets(summary: list[dict]) -> list[list[str]]:
    stack = summary[0]["dense_stack_params"]
    factorized = [e for e in summary if e["variant"] in VARIANTS]
    five_x = [e for e in factorized if stack / e["dense_stack_params"] >= 5]
    good = [e for e in five_x if e["delta_points"] >= -0.5]
    pick = max(good or five_x, key=lambda e: stack / e["dense_stack_params"])
    fastest = max(factorized, key=lambda e: e["latency_ratio"])
    fc1_only = max(
        (e for e in factorized if "conv2" not in e["variant"]), key=lambda e: e["latency_ratio"]
    )

    def verdict(ok):
        return "met" if ok else "NOT met"

    return [
        [
            ">= 5x fewer Dense-stack parameters, <= 0.5 pt accuracy loss after fine-tuning "
            "(mean over the seeds)",
            pick["variant"],
            f"{stack / pick['dense_stack_params']:.1f}x, {pick['delta_points']:+.1f} pt "
            "(worst seed "
            f"{pick['worst_delta_points']:+.1f} pt)",
            verdict(bool(good)),
        ],
        [
            "lower latency than the original (float32)",
            fastest["variant"],
            f"{fastest['latency_ratio']:.2f}x",
            verdict(fastest["latency_ratio"] > 1),
        ],
        [
            "lower latency than the original, fc1 factorized only",
            fc1_only["variant"],
            f"{fc1_only['latency_ratio']:.2f}x",
            verdict(fc1_only["latency_ratio"] > 1),
        ],
    ]


def observations(summary: list[dict]) -> str:
    e = {entry["variant"]: entry for entry in summary}
    original, fc1 = e[ORIGINAL], e["fc1 rank 16"]
    both, both_int8 = e[QAT_OF[2]], e[f"{QAT_OF[2]} + QAT int8"]
    original_int8 = e[f"{ORIGINAL} + QAT int8"]
    return (
        f"fc1 holds 98% of the weights but {FC1_MACS / original['macs']:.0%} of the MACs: "
        f"factorized alone at rank 16 it cuts the MACs by {original['macs'] / fc1['macs']:.2f}x "
        f"and yet the latency by {fc1['latency_ratio']:.2f}x, as the float FULLY_CONNECTED reads "
        "its 4.7 MB of weights for every image. conv2 holds most of the MACs; factorizing it too "
        f"(3x1 then 1x3 convolutions, rank 16) gives {both['latency_ratio']:.2f}x. With QAT int8 "
        f"that model's `.tflite` is {original['tflite_bytes'] / both_int8['tflite_bytes']:.0f}x "
        f"smaller than the float original, but slower than its float form ("
        f"{both_int8['latency_ms']:.3f} vs {both['latency_ms']:.3f} ms): int8 does not make this "
        f"CNN faster in this interpreter (unfactorized: QAT int8 {original_int8['latency_ms']:.3f}"
        f" ms, float {original['latency_ms']:.3f} ms; see also benchmarks/results/quantization.md)."
    )


def describe(args, summary, svd_rows, minutes: float) -> str:
    control = next(e for e in summary if e["variant"] == CONTROL)
    svd_table = render_table(
        ["matrix", "rank", "full SVD (s)", "randomized SVD (s)", "speed-up", "error / optimal"],
        [
            [
                r["matrix"],
                str(r["rank"]),
                f"{r['full_svd_s']:.3f}",
                f"{r['randomized_s']:.3f}",
                f"{r['speedup']:.1f}x",
                f"{r['error_vs_optimal']:.4f}",
            ]
            for r in svd_rows
        ],
        markdown=True,
    )
    return "\n\n".join(
        [
            f"MNIST-5k (stratified 4,000 / 1,000), seeds {', '.join(map(str, range(args.seeds)))} "
            "(split, initialisation, data order); accuracy: mean (min-max) over the seeds of the "
            "`.tflite`'s top-1 on the 1,000 test images (0.001 = one image). The small CNN is "
            f"pretrained for {args.pretrain_epochs} epochs (Adam 1e-3); every variant is "
            "factorized "
            f"from those weights (SVD, `svd='auto'`), then fine-tuned for {args.finetune_epochs} "
            f"epochs with Adam {args.finetune_lr:g} in the same data order as the control, which "
            "fine-tunes the unfactorized model the same way (it reaches "
            f"{control['delta_points']:+.1f}"
            " pt: part of any gain after fine-tuning is the extra training). QAT rows: "
            f"`quantize_model` of the fine-tuned model, {args.qat_epochs} epoch(s) with Adam 1e-4, "
            "int8 `.tflite` from the fake-quant ranges. `delta`: mean change in points against the "
            "original model of the same seed.",
            "`ranks`: per replaced layer, with the fraction of the kernel's squared "
            "singular values "
            "kept (seed 0; energy-based ranks vary slightly with the seed). "
            "Dense stack: `fc1` + `logits` (weights and biases; 1,181,066 in the original). MACs: "
            "per image, as `tfcompress.report` counts them. Latency: seed 0's `.tflite` files, "
            "`invoke()` on one image, 1 thread, default XNNPACK; median over "
            f"{args.latency_rounds} "
            f"rounds of the median of {args.latency_runs} runs, every model timed in each round "
            "(interleaved, so drift on this shared 2-core machine hits all alike).",
            observations(summary),
            "## Targets",
            render_table(
                ["target", "variant", "measured", "verdict"], targets(summary), markdown=True
            ),
            "## Randomized SVD (Halko et al.: Gaussian sketch of rank + 10 columns, 4 power "
            "iterations with QR) vs LAPACK's full SVD",
            svd_table,
            "float64, numpy's OpenBLAS; the fastest of 5 runs (1 for the full SVD of the large "
            "matrix): on this shared machine LAPACK's times vary several-fold from run to run. "
            "`error / optimal`: Frobenius error of the randomized rank-r approximation over the "
            "Eckart-Young optimum (the discarded singular values). `svd='auto'` takes the "
            "randomized "
            "SVD where `(rank + 10) * 10 <= 2 * min(m, n)` (on the 9216x128 kernel: up to rank "
            f"{max(r for r in range(1, 129) if prefers_randomized((9216, 128), r))}).",
            f"Total runtime: {minutes:.1f} min.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain_epochs", type=int, default=8)
    parser.add_argument("--finetune_epochs", type=int, default=2)
    parser.add_argument("--finetune_lr", type=float, default=3e-4)
    parser.add_argument("--qat_epochs", type=int, default=1)
    parser.add_argument("--latency_rounds", type=int, default=5)
    parser.add_argument("--latency_runs", type=int, default=200)
    parser.add_argument("--svd_size", type=int, default=4096)
    args = parser.parse_args()
    start = time.time()

    records, contents, fc1_kernel = [], {}, None
    for seed in range(args.seeds):
        seed_records, seed_contents, kernel = run_seed(seed, args)
        records += seed_records
        if seed == 0:
            contents, fc1_kernel = seed_contents, kernel
        print(f"seed {seed} done after {(time.time() - start) / 60:.1f} min", flush=True)
    latency = latencies(contents, args.latency_rounds, args.latency_runs)
    svd_rows = svd_timings(fc1_kernel, args.svd_size)
    summary = summarize(records, latency)
    headers = [
        "variant",
        "ranks",
        "Dense-stack params",
        "fewer",
        "params",
        "MACs",
        ".tflite bytes",
        "latency (ms)",
        "speed-up",
        "acc. before FT",
        "acc. after FT",
        "delta (pt)",
    ]
    notes = describe(args, summary, svd_rows, (time.time() - start) / 60)
    results = {"rows": summary, "records": records, "svd": svd_rows}
    paths = write_results(
        "factorization",
        "Low-rank factorization of the small CNN (MNIST-5k)",
        headers,
        table_rows(summary),
        [results],
        notes,
    )
    print(open(paths[1], encoding="utf-8").read())


if __name__ == "__main__":
    main()
