"""What `plan` predicts for a choice, and the `plan_info` it writes into the recipe."""

from __future__ import annotations

from tfcompress.planning.candidates import QUANTITIES, SIZES, Candidate, LayerTable, Loss
from tfcompress.planning.knapsack import Solution
from tfcompress.planning.sensitivity_result import Sensitivity
from tfcompress.planning.target import QUANTITIES as LIMITS
from tfcompress.planning.target import Target

METHOD = (
    "multiple-choice knapsack: Lagrangian relaxation (bisection on each limit's multiplier), "
    "then greedy repair and single/pair improvement moves"
)
# Per export, the key of `Sensitivity.model` each whole-model quantity starts from.
MODEL_TOTALS = {
    "int8": {
        "gzip_bytes": "int8_gzip_bytes",
        "bytes": "int8_bytes",
        "latency_ms": "latency_ms",
        "macs": "macs",
    },
    "dynamic": {"gzip_bytes": "int8_gzip_bytes", "bytes": "int8_bytes", "macs": "macs"},
    "float32": {"gzip_bytes": "float_gzip_bytes", "bytes": "float_bytes", "macs": "macs"},
    "float16": {"gzip_bytes": "float_gzip_bytes", "bytes": "float_bytes", "macs": "macs"},
}
UNITS = {"bytes": "bytes", "gzip_bytes": "gzip bytes", "latency_ms": "ms", "macs": "MACs"}
PER = {"bytes": "byte", "gzip_bytes": "byte", "latency_ms": "ms", "macs": "MAC"}


class PlanTotals:
    """Whole-model predictions: each quantity is the sensitivity's model figure with every
    planned layer's unchanged cost replaced by the chosen one (the planned layers alone where
    the sensitivity has no model figure); losses add up over layers, plus the export's own."""

    def __init__(
        self, sensitivity: Sensitivity, tables: list[LayerTable], export: str, labels: bool
    ):
        self.offsets: dict[str, float] = {}
        self.notes: list[str] = []
        for quantity in QUANTITIES:
            key = MODEL_TOTALS[export].get(quantity)
            total = sensitivity.model.get(key) if key else None
            references = [t.reference[quantity] for t in tables]
            if total is None or any(r is None for r in references):
                self.offsets[quantity] = 0.0
                if quantity != "macs":
                    self.notes.append(f"{quantity}: the planned layers only (no model figure)")
                continue
            scale = 0.5 if export == "float16" and quantity in SIZES else 1.0
            self.offsets[quantity] = scale * float(total) - float(sum(references))
        self.labels = labels
        self.export_loss = self.zero()
        for table in tables:
            self.export_loss = self.export_loss + table.export_loss
            self.notes += [f"{table.layer}: {note}" for note in table.notes]

    def zero(self) -> Loss:
        return Loss(0.0 if self.labels else None)

    def predicted(self, chosen: list[Candidate]) -> dict:
        """Every predicted quantity of the choice (None where a latency was not measured)."""
        out = {}
        for quantity in QUANTITIES:
            values = [c.costs[quantity] for c in chosen]
            unknown = any(v is None for v in values)
            out[quantity] = None if unknown else self.offsets[quantity] + float(sum(values))
        beyond = self.zero()
        for candidate in chosen:
            beyond = beyond + candidate.loss
        total = beyond + self.export_loss.clipped()
        out.update(
            accuracy_drop=total.drop,
            accuracy_drop_beyond_export=beyond.drop,
            disagreement=total.disagreement,
            kl=total.kl,
            points_beyond_export=beyond.points(),
        )
        return out


def _binding(chosen_value, free_value, names, limits, predicted) -> str | None:
    """The limit with the least relative slack, or None when the choice is as good as with
    no limit at all."""
    if chosen_value <= free_value + 1e-9 * max(abs(free_value), 1.0):
        return None

    def slack(name):
        quantity = "points_beyond_export" if name == "max_accuracy_drop" else LIMITS[name][0]
        return (limits[name] - predicted[quantity]) / max(abs(limits[name]), 1e-30)

    return min(names, key=slack)


def _saving(unchanged: Candidate, candidate: Candidate, quantity: str) -> str | None:
    before, after = unchanged.costs[quantity], candidate.costs[quantity]
    if before is None or after is None or after >= before:
        return None
    share = f" ({(before - after) / before:.0%})" if before > 0 else ""
    return f"{number(before - after, quantity)} {UNITS[quantity]}{share}"


def number(value: float, quantity: str) -> str:
    """`12,345` for counts (bytes, MACs), `0.0123` for milliseconds and losses."""
    if quantity in ("bytes", "gzip_bytes", "macs"):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _reason(table, candidate, binding, names, labels) -> str:
    unchanged = table.candidates[0]
    if len(table.candidates) == 1:
        return "left as it is: no option fits"
    accuracy_only = names == ["max_accuracy_drop"]
    if not candidate.changes():
        if binding is None:
            return "left as it is: the target is met without changing it"
        if accuracy_only:
            return "left as it is: no option fits in the accuracy budget left"
        return "left as it is: its options save too little for their predicted loss"
    quantities = ["gzip_bytes"] if accuracy_only else [LIMITS[n][0] for n in names]
    savings = [s for q in quantities if (s := _saving(unchanged, candidate, q)) is not None]
    saves = "saves " + ", ".join(savings) if savings else "saves nothing limited"
    if accuracy_only:
        loss = f"+{candidate.loss.points():.3g} predicted points"
        return f"smallest within the accuracy budget: {saves} for {loss}"
    unit = "points" if labels else "KL"
    loss = f"+{candidate.loss.objective():.3g} predicted {unit}"
    if binding is None:
        return f"free: {saves} for {loss}"
    per = PER[LIMITS[binding][0]]
    return f"most loss-per-{per} efficient at the {binding} limit: {saves} for {loss}"


def _layer_info(table: LayerTable, candidate: Candidate, reason: str) -> dict:
    prune, rank = candidate.prune, candidate.rank
    return {
        "choice": candidate.key,
        "structure": None if prune is None else prune.structure,
        "sparsity": 0.0 if prune is None else float(prune.sparsity),
        "bits": candidate.bits,
        "rank": None if rank is None else int(rank.rank),
        "loss": candidate.loss.objective(),
        "accuracy_drop": candidate.loss.drop,
        "kl": candidate.loss.kl,
        **{q: candidate.costs[q] for q in QUANTITIES},
        "unchanged": {q: table.candidates[0].costs[q] for q in QUANTITIES},
        "kernels": candidate.kernels,
        "estimated": list(candidate.estimated),
        "options": len(table.candidates),
        "reason": reason,
    }


def plan_info(
    tables: list[LayerTable],
    chosen: list[Candidate],
    solution: Solution,
    target: Target,
    names: list[str],
    totals: PlanTotals,
    objective: list,
    export: str,
    kernels: str,
) -> dict:
    """The record `plan` leaves in `Recipe.plan_info` (plain values, for YAML and JSON).

    Keys: `method`, `target`, `objective` (what was minimised), `binding` (the limit that
    stops further gains, None when nothing binds), `predicted` (every quantity), `unchanged`
    (the same for the export alone), `limits` (per target field: quantity, limit, predicted,
    slack, whether planned for), `multipliers`, `moves`, `export`, `kernels`, `layers`
    (per layer: choice, structure, sparsity, bits, rank, loss, costs, reason) and `notes`.
    """
    limits = target.limits()
    predicted = totals.predicted(chosen)
    value = float(sum(o[i] for o, i in zip(objective, solution.choice)))
    free = float(sum(o.min() for o in objective))
    binding = _binding(value, free, names, limits, predicted)
    rows = {}
    for table, candidate in zip(tables, chosen):
        reason = _reason(table, candidate, binding, names, totals.labels)
        rows[table.layer] = _layer_info(table, candidate, reason)
    accuracy_only = names == ["max_accuracy_drop"]
    checked = {}
    for name, limit in limits.items():
        quantity = LIMITS[name][0]
        key = "points_beyond_export" if accuracy_only and quantity == "accuracy_drop" else quantity
        guess = predicted.get(key)
        checked[name] = {
            "quantity": quantity,
            "limit": limit,
            "predicted": guess,
            "slack": None if guess is None else limit - guess,
            "planned": name in names,
        }
    notes = list(totals.notes)
    if accuracy_only:
        what = "gzip_bytes"
        measure = "drop" if totals.labels else "top-1 disagreement"
        notes.append(
            f"max_accuracy_drop is compared with points_beyond_export: the predicted {measure} "
            "in points beyond the export's own, plus 0.01 x KL"
        )
    else:
        what = "accuracy_drop" if totals.labels else "kl"
        if "max_accuracy_drop" in limits:
            notes.append("max_accuracy_drop is not planned for: compress checks it as measured")
    return _rounded(
        {
            "method": METHOD,
            "target": target.to_dict(),
            "objective": what,
            "binding": binding,
            "predicted": predicted,
            "unchanged": totals.predicted([t.candidates[0] for t in tables]),
            "limits": checked,
            "multipliers": dict(zip(names, solution.multipliers)),
            "moves": dict(solution.moves),
            "export": export,
            "kernels": kernels,
            "layers": rows,
            "notes": notes,
        }
    )


def _rounded(value):
    """Floats to 6 significant digits, so the recipe file reads cleanly."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value
