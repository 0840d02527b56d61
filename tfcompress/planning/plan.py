"""`plan`: per-layer choices that meet a `Target` with the least predicted loss."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import keras
import numpy as np

from tfcompress.planning.candidates import Candidate, layer_table
from tfcompress.planning.errors import InfeasibleTargetError
from tfcompress.planning.knapsack import solve
from tfcompress.planning.plan_info import PlanTotals, plan_info
from tfcompress.planning.recipe import Recipe
from tfcompress.planning.recipe_sections import EXPORT_MODES, KERNELS
from tfcompress.planning.schema import check_choice
from tfcompress.planning.sensitivity_result import Sensitivity
from tfcompress.planning.target import QUANTITIES as LIMITS
from tfcompress.planning.target import Target

# Fine-tuning recovers most of a plan's predicted loss (each layer changed alone, no
# training): the demo's 7.5 predicted points came out as 0.5 measured. Far beyond this many
# times the limit (and 10 points), it rarely does: the tiny MobileNet's 3x plan predicted 192
# points and lost 63 measured.
HOPELESS_FACTOR = 20.0


def _warn_if_hopeless(target: Target, info: dict) -> None:
    """Warns when a size or latency limit forced a plan whose predicted accuracy loss is far
    beyond `max_accuracy_drop`, which `compress` then checks as measured."""
    limit = target.max_accuracy_drop
    predicted = info["predicted"].get("accuracy_drop_beyond_export")
    if limit is None or predicted is None or info["binding"] in (None, "max_accuracy_drop"):
        return
    if predicted > max(HOPELESS_FACTOR * limit, 10.0):
        warnings.warn(
            f"tc.plan: to meet {info['binding']} the plan predicts {predicted:.1f} points of "
            f"accuracy lost (each layer changed alone, before fine-tuning), against "
            f"max_accuracy_drop={limit:g}; fine-tuning rarely recovers that much. A looser "
            f"{info['binding']} keeps more accuracy.",
            stacklevel=3,
        )


def _layer_names(model: keras.Model) -> set[str]:
    """Every layer name, nested models' layers also as `outer/inner`."""
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if isinstance(layer, keras.Model):
            inner = _layer_names(layer)
            names |= inner | {f"{layer.name}/{name}" for name in inner}
    return names


def _check(model, sensitivity, target, export, kernels) -> Target:
    if not isinstance(sensitivity, Sensitivity):
        raise TypeError(
            "`sensitivity` must be a `Sensitivity` (from `tfcompress.sensitivity` or "
            f"`Sensitivity.load`). Received: sensitivity={type(sensitivity).__name__}"
        )
    if sensitivity.shard is not None:
        info = sensitivity.shard
        raise ValueError(
            f"`sensitivity` is shard {info['index']} of {info['count']}: merge every shard "
            "with `Sensitivity.merge` and plan from the result."
        )
    if isinstance(target, Mapping):
        target = Target.from_dict(target)
    if not isinstance(target, Target):
        raise TypeError(f"`target` must be a `Target`. Received: target={target!r}")
    check_choice(export, "export", EXPORT_MODES)
    check_choice(kernels, "kernels", KERNELS)
    if model is not None:
        missing = [name for name in sensitivity.layers if name not in _layer_names(model)]
        if missing:
            raise ValueError(
                f"The sensitivity names layers that model {model.name!r} does not have: "
                f"{missing}. Measure the sensitivity of this model."
            )
    if target.max_latency_ms is not None:
        if export != "int8":
            raise ValueError(
                "A latency target needs export='int8' (latencies are measured on int8 ops). "
                f"Received: export={export!r}, max_latency_ms={target.max_latency_ms!r}"
            )
        unmeasured = sorted({e.layer for e in sensitivity.entries if e.latency_ms is None})
        if unmeasured or sensitivity.model.get("latency_ms") is None:
            raise ValueError(
                "A latency target needs measured latencies; this sensitivity has none for "
                f"{unmeasured or 'the whole model'}. Run `tfcompress.sensitivity(..., "
                "latency=True)`."
            )
    return target


def _problem(tables, target: Target, totals: PlanTotals):
    """Objective per candidate, cost columns, budgets and the limits they stand for."""
    resources = target.resource_limits()
    if resources:
        names = list(resources)
        quantities = [LIMITS[name][0] for name in names]
        objective = [np.array([c.loss.objective() for c in t.candidates]) for t in tables]
        costs = [np.array([[c.costs[q] for q in quantities] for c in t.candidates]) for t in tables]
        budgets = [resources[n] - totals.offsets[q] for n, q in zip(names, quantities)]
        return objective, costs, np.array(budgets), names
    # Accuracy only: the least gzip size within the drop; a tiny loss term breaks ties.
    objective = [
        np.array([c.costs["gzip_bytes"] + 1e-6 * c.loss.points() for c in t.candidates])
        for t in tables
    ]
    costs = [np.array([[c.loss.points()] for c in t.candidates]) for t in tables]
    return objective, costs, np.array([target.max_accuracy_drop]), ["max_accuracy_drop"]


def _infeasible(target, names, costs, totals, closest) -> InfeasibleTargetError:
    limits = target.limits()
    minimum = {
        name: totals.offsets[LIMITS[name][0]] + sum(float(c[:, k].min()) for c in costs)
        for k, name in enumerate(names)
    }
    alone = [name for name in names if minimum[name] > limits[name]]
    over = [name for name in names if closest[LIMITS[name][0]] > limits[name]]
    constraint = (alone or over or names)[0]
    if alone:
        why = "; ".join(
            f"{name}={limits[name]:,.6g} {LIMITS[name][1]}, but no plan gets "
            f"{LIMITS[name][0]} below {minimum[name]:,.6g}"
            for name in alone
        )
    else:
        listed = ", ".join(f"{name}={limits[name]:,.6g}" for name in names)
        why = f"{listed} conflict: each can be met, but no plan found meets them together"
    point = ", ".join(
        f"{q} {closest[q]:,.6g}"
        for q in ("gzip_bytes", "bytes", "latency_ms", "macs", "accuracy_drop", "kl")
        if closest.get(q) is not None
    )
    return InfeasibleTargetError(
        f"The target cannot be met: {why}. Closest reachable point (the most compressed plan "
        f"found): {point}. Raise {constraint}, drop a conflicting limit, or measure stronger "
        "options (higher sparsities, 4 bits, lower ranks) with `tfcompress.sensitivity`.",
        constraint,
        limits[constraint],
        closest,
        minimum,
    )


def _layer_recipe(candidate: Candidate) -> dict | None:
    entry = {}
    if candidate.prune is not None:
        entry["prune"] = {
            "structure": candidate.prune.structure,
            "sparsity": float(candidate.prune.sparsity),
        }
    if candidate.bits == 4:
        entry["bits"] = 4
    if candidate.rank is not None:
        entry["rank"] = int(candidate.rank.rank)
    return entry or None


def plan(
    model: keras.Model | None,
    sensitivity: Sensitivity,
    target: Target | Mapping,
    export: str = "int8",
    kernels: str = "auto",
) -> Recipe:
    """Chooses per layer what to do so the model meets `target` with the least predicted loss.

    Candidates per layer: unchanged, each measured prune option and each rank option, each at
    8 or 4 weight bits (int8 export). Predicted loss is additive over layers and over a
    layer's parts (pruning or rank, plus what 4 bits adds beyond 8): the measured accuracy
    drop in points (plus 0.01 x KL to rank equal drops) where the sensitivity had labels, else
    the KL divergence; the int8 export's own loss is not a choice and is reported apart.
    Costs come from the measured entries (a pruned layer at 4 bits is estimated from the
    pruned entry scaled by what 4 bits did to the dense layer); model totals are the
    sensitivity's whole-model figures with each planned layer's unchanged cost replaced by
    the chosen one. Latency uses our kernels' measurement where it is smaller
    (`kernels="auto"`), wherever they claim the layer (`"all"`), or never (`"none"`). Layer
    sizes are gzipped at level 9, as the files are measured. Predictions are made on the
    original weights: after the compress benchmark's fine-tuning and QAT (MNIST-5k, AMD EPYC
    Zen 4; benchmarks/results/compress.md) the files came out 21-37% smaller than predicted
    on LeNet-300-100, so a size target is met with room; `compress` plans once more with the
    budget scaled by predicted / measured when its file misses the target (`replans`).

    The search is a multiple-choice knapsack (`tfcompress.planning.knapsack`): Lagrangian
    relaxation with bisection on each resource limit's multiplier, then greedy repair and
    single/pair improvement moves. With resource limits (`max_bytes`, `max_gzip_bytes`,
    `max_latency_ms`, `max_macs`) it minimises the predicted loss, and `max_accuracy_drop`
    is left for `tfcompress.compress` to check on the measured model (fine-tuning recovers
    most of the predicted loss; a warning says when the limits force a predicted loss over
    20 times `max_accuracy_drop` and over 10 points, which it rarely does). With
    `max_accuracy_drop` alone it minimises the gzip size subject to the predicted drop beyond
    the export (top-1 disagreement in points when the sensitivity had no labels).

    Args:
        model: The model the sensitivity was measured on (its layer names are checked), or
            None.
        sensitivity: From `tfcompress.sensitivity` or `Sensitivity.load`.
        target: A `Target` (or its dict).
        export: The final `.tflite` mode: "int8" (bits can be chosen), "dynamic",
            "float16", "float32".
        kernels: "auto", "all" or "none" (see above); written into the recipe.

    Returns:
        A `Recipe` listing the changed layers, with `plan_info`: the binding limit, the
        predicted value of every quantity, and each layer's choice with its reason.

    Raises:
        InfeasibleTargetError: No choice meets the limits; the message names the limit and
            the closest reachable point.

    Example:
        >>> from tfcompress.planning import LayerOption, Sensitivity, SensitivityEntry
        >>> from tfcompress.planning.plan import plan
        >>> from tfcompress.planning.target import Target
        >>> def entry(option, drop, kl, nonzeros, gzip):
        ...     return SensitivityEntry("fc", option, drop, kl, 1 - drop / 100, 1000,
        ...                             nonzeros, 1000, 1000 + 40, gzip, 0.01)
        >>> pruned = LayerOption("prune", structure="unstructured", sparsity=0.9)
        >>> sensitivity = Sensitivity([
        ...     entry(None, 0.0, 0.0, 1000, 3700),
        ...     entry(LayerOption("bits", bits=8), 0.1, 0.001, 1000, 950),
        ...     entry(LayerOption("bits", bits=4), 0.5, 0.01, 1000, 600),
        ...     entry(pruned, 0.8, 0.02, 100, 200)], {"int8_gzip_bytes": 2000})
        >>> recipe = plan(None, sensitivity, Target(max_gzip_bytes=1500))
        >>> recipe.layers["fc"].prune.sparsity, recipe.plan_info["binding"]
        (0.9, 'max_gzip_bytes')
        >>> plan(None, sensitivity, Target(max_gzip_bytes=2000)).layers
        {}
    """
    target = _check(model, sensitivity, target, export, kernels)
    labels = all(e.accuracy_drop is not None for e in sensitivity.entries)
    tables = [
        layer_table(sensitivity, name, export, kernels, labels) for name in sensitivity.layers
    ]
    totals = PlanTotals(sensitivity, tables, export, labels)
    objective, costs, budgets, names = _problem(tables, target, totals)
    solution = solve(objective, costs, budgets)
    chosen = [t.candidates[i] for t, i in zip(tables, solution.choice)]
    if not solution.feasible:
        raise _infeasible(target, names, costs, totals, totals.predicted(chosen))
    layers = {c.layer: entry for c in chosen if (entry := _layer_recipe(c)) is not None}
    info = plan_info(tables, chosen, solution, target, names, totals, objective, export, kernels)
    _warn_if_hopeless(target, info)
    return Recipe(layers=layers, export={"mode": export}, kernels=kernels, plan_info=info)
