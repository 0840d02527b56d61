"""Re-planning on the measured file: a target the `.tflite` misses is planned again, each
resource limit scaled by what the last plan predicted over what its file measured."""

from __future__ import annotations

from collections.abc import Callable

import keras

from tfcompress.planning.compression_result import CompressionResult
from tfcompress.planning.errors import InfeasibleTargetError
from tfcompress.planning.plan import plan
from tfcompress.planning.plan_info import number
from tfcompress.planning.recipe import Recipe
from tfcompress.planning.sensitivity_result import Sensitivity
from tfcompress.planning.target import QUANTITIES, Target

# Sizes and MACs are exact counts of the file: their budget is corrected either way, tighter
# after a miss, looser where the file came out smaller than predicted (which gives accuracy back
# when the accuracy drop was missed). A latency is a noisy median: a missed latency limit is
# tightened, a met one is never loosened. The accuracy drop is never scaled: fine-tuning moves
# it far from the prediction (`plan` does not plan for it beside a resource limit).
BOTH_WAYS = ("max_bytes", "max_gzip_bytes", "max_macs")
WHEN_MISSED = ("max_latency_ms",)


def check_replans(replans: int) -> int:
    if isinstance(replans, bool) or not isinstance(replans, int) or replans < 0:
        raise ValueError(
            f"`replans` must be a non-negative integer (0: never re-plan). Received: "
            f"replans={replans!r}"
        )
    return replans


def corrected_budget(
    target: Target, budget: Target, targets: dict[str, dict]
) -> tuple[Target, dict[str, float]]:
    """The limits to plan for next, and the factor (predicted / measured) applied to each
    scaled limit of `target`; the others stay as in `budget`."""
    limits, factors = budget.limits(), {}
    for name, measured in targets.items():
        scaled = name in BOTH_WAYS or (name in WHEN_MISSED and not measured["met"])
        if scaled and measured["predicted"] and measured["measured"]:
            factors[name] = measured["predicted"] / measured["measured"]
            value = target.limits()[name] * factors[name]
            limits[name] = value if name in WHEN_MISSED else float(max(1, round(value)))
    return Target(**limits), factors


def _shortfall(targets: dict[str, dict]) -> tuple[int, float]:
    """How badly a result misses: limits missed, then their summed excess over the limit
    (relative; the accuracy drop's over at least 1 point)."""
    missed = [(n, t) for n, t in targets.items() if not t["met"]]
    excess = sum(
        0.0
        if t["measured"] is None
        else (t["measured"] - t["limit"])
        / max(t["limit"], 1.0 if n == "max_accuracy_drop" else 1e-30)
        for n, t in missed
    )
    return len(missed), excess


def _budget_text(budget: Target, factors: dict[str, float]) -> str:
    return ", ".join(
        f"{name} {number(budget.limits()[name], QUANTITIES[name][0])} (x{factor:.3g})"
        for name, factor in factors.items()
    )


def _record(result: CompressionResult, budget: Target, factors: dict[str, float]) -> dict:
    return {
        "planned_for": budget.to_dict(),
        "correction": dict(factors),
        "layers": {name: layer.to_dict() for name, layer in result.recipe.layers.items()},
        "targets": {name: dict(t) for name, t in result.targets.items()},
        "met": result.met,
        "kept": False,
    }


def compress_to_target(
    run: Callable[[Recipe], CompressionResult],
    model: keras.Model,
    sensitivity: Sensitivity,
    target: Target,
    replans: int,
    verbose: int,
) -> CompressionResult:
    """Plans for `target`, `run`s the recipe, and while the result misses the target as
    measured (at most `replans` times) plans again for `corrected_budget` and runs that.

    Returns the first result that meets the target, else the one that misses it least (the
    earlier on a tie), with `attempts` (one record per plan run) and notes saying why.
    """
    budget, factors = target, {}
    recipe = plan(model, sensitivity, target)
    if verbose:
        print(f"Plan:\n{recipe.summary()}")
    results = [run(recipe)]
    attempts = [_record(results[0], budget, factors)]
    notes = []

    def say(note: str) -> None:
        notes.append(note)
        if verbose:
            print(note)

    while not results[-1].met and len(results) <= replans:
        done = len(results)
        budget, factors = corrected_budget(target, budget, results[-1].targets)
        missed = f"Plan {done} missed the target as measured ({'; '.join(results[-1].missed())})"
        again = [i + 1 for i, a in enumerate(attempts) if a["planned_for"] == budget.to_dict()]
        if not factors or again:
            why = (
                f"plan {again[0]} was made for the corrected budget"
                if again
                else "no size, MACs or missed latency limit to scale (the accuracy drop is not)"
            )
            say(f"{missed}; not re-planned: {why}.")
            break
        why = (
            f"{missed}; re-planned with each limit scaled by its predicted / measured value: "
            f"{_budget_text(budget, factors)}"
        )
        try:
            recipe = plan(model, sensitivity, budget)
        except InfeasibleTargetError as error:
            say(f"{why}, which cannot be planned: {error}")
            break
        same = [i + 1 for i, r in enumerate(results) if r.recipe.layers == recipe.layers]
        if same:
            say(f"{why}; it chose what plan {same[0]} did, so it was not run again.")
            break
        say(f"{why}.")
        if verbose:
            print(f"Plan:\n{recipe.summary()}")
        results.append(run(recipe))
        attempts.append(_record(results[-1], budget, factors))
    best = min(range(len(results)), key=lambda i: _shortfall(results[i].targets))
    attempts[best]["kept"] = True
    kept = results[best]
    if len(results) > 1:
        verdict = "it meets the target" if kept.met else "no plan met the target; it misses least"
        say(f"Kept plan {best + 1} of {len(results)}: {verdict}.")
    kept.notes = kept.notes + notes
    kept.attempts = attempts
    return kept
