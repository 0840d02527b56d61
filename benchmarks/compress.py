"""Compression to a target on MNIST-5k: per-layer recipes vs uniform settings vs tfmot.

For each model and seed: the float model is trained (to convergence for LeNet and the
small CNN); then every row starts from its weights, fine-tunes for the same epochs on
the same data and is measured as an int8 `.tflite` in the interpreter (accuracy on the 1,000 test
images, gzip bytes, latency with and without our kernels):

* `float32` / `int8 (post-training)`: the starting point and plain int8;
* `planned`: `tc.sensitivity` + `tc.plan` + `tc.compress` for the size goal (and, for
  the small CNN, a latency target);
* `recipe (tc.compress)`: a per-layer recipe of benchmarks/recipes (`tc.Recipe` YAML,
  found by the search in results/compress-notes.md) run by
  `tc.compress(model, data, validation_data, recipe=Recipe.from_file(...))`;
* `uniform ... at the same gzip`: one sparsity for every layer (8-bit, and 4-bit),
  the sparsity chosen so that the gzip bytes match the recipe's;
* `tfmot`: its uniform pruning + pruning-preserving QAT (8-bit), in its own
  process (benchmarks/tfmot_compress_peer.py, needs a Python with tfmot and tf_keras);
* `latency`: the block-sparse latency recipe, and uniform 16x4 blocks at the measured
  latency of the planned latency row.

Models: benchmarks/compress_models.py; rows: compress_rows.py (baselines in
compress_baselines.py); table, verdicts and plots: compress_table.py.

Run from the repository root:
    python -m benchmarks.compress [--models lenet_300_100 small_cnn] [--seeds 0 1]
        [--rows planned recipe uniform tfmot latency] [--only_planned]
        [--tfmot_python /work/venvs/tfmot/bin/python]
    python -m benchmarks.compress --render results/compress-runs/A.json B.json ...
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import tfcompress as tc
from benchmarks.compress_models import MODELS
from benchmarks.compress_rows import ROW_GROUPS, model_rows
from benchmarks.compress_table import save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--rows", nargs="+", default=list(ROW_GROUPS), choices=ROW_GROUPS)
    parser.add_argument("--only_planned", action="store_true", help="--rows planned")
    parser.add_argument("--prune_epochs", type=int, default=None, help="default: per model")
    parser.add_argument("--qat_epochs", type=int, default=None, help="default: per model")
    parser.add_argument(
        "--planned_epochs",
        nargs=2,
        type=int,
        default=None,
        metavar=("PRUNE", "QAT"),
        help="the planned recipes' fine-tuning and QAT epochs (default: the model's)",
    )
    parser.add_argument(
        "--planned_distill", action="store_true", help="planned recipes distil from the original"
    )
    parser.add_argument(
        "--planned_replan",
        action="store_true",
        help="plan the size target once more, its budget scaled by predicted / measured gzip",
    )
    parser.add_argument("--end_fraction", type=float, default=0.5)
    parser.add_argument("--latency_runs", type=int, default=200)
    parser.add_argument("--tfmot_python", default=None, help="a Python with tfmot and tf_keras")
    parser.add_argument("--name", default="compress")
    parser.add_argument(
        "--render", nargs="+", default=None, help="only re-render these results JSON files, merged"
    )
    args = parser.parse_args()
    if args.only_planned:
        args.rows = ["planned"]
    if args.render:
        render(args)
        return
    start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="tfcompress-bench-")
    records = []
    for seed in args.seeds:
        data = tc.datasets.load_mnist5k(seed=seed)
        for name in args.models:
            records.extend(model_rows(name, data, args, seed, workdir))
            paths = save(records, args, time.perf_counter() - start)  # after each model
    with open(paths[1], encoding="utf-8") as f:
        print(f.read())


def render(args) -> None:
    """Writes one table from several runs' JSON (rows of a model, seed and method that an
    earlier file holds are not repeated); their commands are listed in the notes."""
    records, commands, seen, cpus = [], [], set(), []
    for path in args.render:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
        commands.append(f"`{run['environment']['command']}` ({run['environment']['date']})")
        cpus.append(f"{run['environment']['cpu']}, {run['environment']['cores']} cores")
        for record in run["results"]:
            key = (record["model"], record["seed"], record["method"])
            if key not in seen:
                seen.add(key)
                records.append(record)
    args.models = list(dict.fromkeys(r["model"] for r in records))
    args.seeds = sorted({r["seed"] for r in records})
    merged = "Rows measured by: " + "; ".join(commands) + "."
    save(records, args, None, merged, cpu="; ".join(dict.fromkeys(cpus)))


if __name__ == "__main__":
    main()
