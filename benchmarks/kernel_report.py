"""The tables, targets and notes of `benchmarks/kernels.py`'s results."""

from __future__ import annotations

from benchmarks.kernel_models import CALIBRATION, FC_SIZE
from benchmarks.kernel_runner import VARIANTS
from tfcompress.demo import KEPT_DENSE
from tfcompress.reporting.table import render_table

# The verdict of a variant that claims no node: it is the default interpreter.
IDLE = "met (claims no node: it is the default interpreter; the ratio is noise)"


def us(entry: dict) -> str:
    return f"{entry['median']:.1f} ({entry['min']:.1f})"


def ratio(entry: dict, spread: bool = True) -> str:
    text = f"{entry['median']:.2f}x"
    return f"{text} ({entry['min']:.2f}-{entry['max']:.2f})" if spread else text


def kernel_of(node: dict) -> str:
    kernel = f"{node['kernel']} {node['isa']}" if node["isa"] else node["kernel"]
    where = "claimed" if node["claimed"] else "left to XNNPACK"
    return f"{kernel}, {where} (expected {node['expected_speedup']:.2f}x)"


def kernels_of(nodes: list[dict]) -> str:
    return "; ".join(kernel_of(n) for n in nodes) or "-"


def claimed(record: dict) -> bool:
    """Whether ours as deployed claimed the (one-node) layer."""
    return any(n["claimed"] for n in record["ours_nodes"])


def layer_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        lat, s = r["latency_us"], r["speedups"]
        density = ", ".join(f"{n['block_density']:.2f}" for n in r["ours_nodes"]) or "-"
        diff = r["outputs_differing_from_reference"]
        rows.append(
            [
                r["layer"],
                str(r["batch"]),
                f"{r['sparsity']:.0%}",
                density,
                kernels_of(r["ours_nodes"]),
                us(lat["ours"]),
                us(lat["ours_all"]),
                us(lat["ours_dense"]),
                us(lat["xnnpack"]),
                us(lat["builtin"]),
                ratio(s["ours_vs_xnnpack"]),
                ratio(s["ours_all_vs_xnnpack"], False),
                ratio(s["ours_dense_vs_xnnpack"], False),
                ratio(s["ours_vs_builtin"], False),
                ", ".join(str(diff[name]) for name in VARIANTS) + f" of {r['output_elements']:,}",
            ]
        )
    return rows


REFS = ("xnnpack", "builtin", "reference")


def e2e_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        lat, s, acc, diff = r["latency_us"], r["speedups"], r["tflite_accuracy"], r["differences"]
        rows.append(
            [
                r["model"],
                f"{r['sparsity']:.0%}",
                us(lat["ours"]),
                us(lat["ours_all"]),
                us(lat["ours_tuned"]),
                us(lat["xnnpack"]),
                us(lat["builtin"]),
                ratio(s["ours_vs_xnnpack"]),
                ratio(s["ours_all_vs_xnnpack"], False),
                ratio(s["ours_tuned_vs_xnnpack"], False),
                f"{acc['ours']:.3f}",
                f"{acc['xnnpack']:.3f}",
                f"{acc['builtin']:.3f}",
                " / ".join(str(diff[f"ours_vs_{ref}"]["argmax_differs"]) for ref in REFS),
                " / ".join(str(diff[f"ours_vs_{ref}"]["int8_outputs_differ"]) for ref in REFS),
            ]
        )
    return rows


def node_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        for n in r["ours_nodes"]:
            rows.append(
                [
                    r["model"],
                    f"{r['sparsity']:.0%}",
                    str(n["node"]),
                    n["layer"],
                    n["op"],
                    f"{n['n']}x{n['k']}",
                    f"{n['block_density']:.2f}",
                    f"{n['kernel']} {n['isa'] or ''}".strip(),
                    f"{n['expected_speedup']:.2f}x",
                    "yes" if n["claimed"] else "no",
                    "yes" if n["node"] in r["tuned_nodes"] else "no",
                ]
            )
    return rows


def find(records: list[dict], **match) -> dict | None:
    return next((r for r in records if all(r[k] == v for k, v in match.items())), None)


def targets(layers: list[dict], e2e: list[dict]) -> list[list[str]]:
    """The kernel issue's targets, each with what was measured and a verdict."""

    def verdict(value, bound):
        return "n/a (row missing)" if value is None else ("met" if value >= bound else "NOT met")

    fc = f"FC {FC_SIZE}x{FC_SIZE}"
    rows = []
    for sparsity, bound in ((0.8, 4.0), (0.9, 8.0)):
        r = find(layers, layer=fc, batch=1, sparsity=sparsity)
        value = r and r["speedups"]["ours_vs_xnnpack"]["median"]
        rows.append(
            [
                f"{fc}, batch 1, {sparsity:.0%} block-sparse: >= {bound:g}x XNNPACK",
                "-" if r is None else ratio(r["speedups"]["ours_vs_xnnpack"]),
                verdict(value, bound),
            ]
        )
    left = "met (left to XNNPACK: the default interpreter; the ratio is noise)"
    for r in layers:
        if r["sparsity"] == 0.0 and r["batch"] == 1:
            bound = 0.9 if r["layer"].startswith("FC") else 0.8
            auto, every = r["speedups"]["ours_vs_xnnpack"], r["speedups"]["ours_all_vs_xnnpack"]
            rows.append(
                [
                    f"dense {r['layer']}, batch 1: >= {bound:g}x XNNPACK",
                    f"{ratio(auto)} ({'claimed' if claimed(r) else 'left to XNNPACK'}); "
                    f"our kernel on it {ratio(every, False)}",
                    verdict(auto["median"], bound) if claimed(r) else left,
                ]
            )
    r = find(layers, layer=fc, batch=32, sparsity=0.9)
    if r is not None:
        auto = r["speedups"]["ours_vs_xnnpack"]
        met = "met (left to XNNPACK)" if not claimed(r) else verdict(auto["median"], 1.5)
        rows.append([f"{fc}, batch 32, 90%: >= 1.5x XNNPACK, or left to it", ratio(auto), met])
    for r in e2e:
        name = f"{r['model']} {r['sparsity']:.0%}"
        auto, tuned = r["speedups"]["ours_vs_xnnpack"], r["speedups"]["ours_tuned_vs_xnnpack"]
        auto_verdict = verdict(auto["median"], 0.95) if claimed(r) else IDLE
        tuned_verdict = verdict(tuned["median"], 1.0) if r["tuned_nodes"] else IDLE
        rows.append([f"{name} end to end: auto >= 0.95x XNNPACK", ratio(auto), auto_verdict])
        rows.append([f"{name} end to end: autotuned >= 1.0x", ratio(tuned), tuned_verdict])
    return rows  # MobileNetV2's targets: kernel_mobilenet.mobilenet_targets


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
        "as deployed: it claims a layer only where its cost model (kernels/src/cost_model.h) "
        f"expects a 1.2x win on this CPU (`{machine['host']}`), and runs it block-sparse "
        "when at most 70% of the 16x4 blocks hold a non-zero; `ours all layers`: "
        '`nodes="all"`, every layer it can run; `ours autotuned`: the nodes '
        "`tfcompress.kernels.autotune` chose on this machine; `ours dense`: "
        '`kernel="dense"` forced; our delegate is applied first and the default XNNPACK '
        "delegate takes the nodes we leave; `XNNPACK`: the default interpreter "
        "(`OpResolverType.AUTO`); `builtin`: `BUILTIN_WITHOUT_DEFAULT_DELEGATES`."
    )
    layer_text = (
        "Per layer: one-node full-int8 `.tflite` (int8 input and output, ReLU fused; the "
        "batch-32 FC models store batch 32, as the cost model decides at the stored batch), random "
        "Gaussian weights with `round(sparsity x blocks)` 16x4 blocks zeroed at random, "
        f"calibrated on {CALIBRATION} random inputs; the timed input is random int8. `block "
        "density`: fraction of 16x4 blocks holding a non-zero, as our delegate measured it in the "
        "`.tflite`. Last column: how many int8 output elements of ours auto, all layers, dense, "
        "XNNPACK and the builtin kernels differ from TFLite's reference kernels "
        "(`BUILTIN_REF`, not timed) on the timed input."
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
        accuracy_lines.append(
            f"{r['model']} {r['sparsity']:.0%}: float {r['float_accuracy']:.3f},"
            f" QAT Keras {r['keras_qat_accuracy']:.3f}"
        )
    return "\n\n".join(
        [
            method,
            layer_text,
            "## End to end (batch 1)",
            render_table(
                [
                    "model",
                    "block sparsity",
                    "ours auto (us)",
                    "ours all layers (us)",
                    "ours autotuned (us)",
                    "XNNPACK (us)",
                    "builtin (us)",
                    "ours auto vs XNNPACK",
                    "all layers vs XNNPACK",
                    "autotuned vs XNNPACK",
                    "acc. ours",
                    "acc. XNNPACK",
                    "acc. builtin",
                    "argmax differs (vs XNNPACK / builtin / reference)",
                    "int8 output differs (vs XNNPACK / builtin / reference)",
                ],
                e2e_rows(e2e),
                markdown=True,
            ),
            e2e_text + " Keras accuracies (before export): " + "; ".join(accuracy_lines) + ".",
            "## Nodes our delegate can run: the cost model's choice and autotune's",
            render_table(
                [
                    "model",
                    "sparsity",
                    "node",
                    "layer",
                    "op",
                    "weights (n x k)",
                    "block density",
                    "kernel",
                    "expected speed-up",
                    "claimed (auto)",
                    "chosen by autotune",
                ],
                node_rows(e2e),
                markdown=True,
            ),
            "## Targets",
            render_table(["target", "measured", "verdict"], targets(layers, e2e), markdown=True),
            floor_note(layers, floor),
            f"Total runtime: {minutes:.1f} min (training included).",
        ]
    )
