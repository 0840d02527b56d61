"""What the planner may choose for one layer, with its predicted loss and costs.

A candidate is a prune option (or none) or a rank option, combined with weight bits 8 or 4
(int8 export; other exports have no bits choice). Its predicted loss is the sum of its
parts' measured losses, each counted beyond what the export alone costs: none at 8 bits is
0, a prune or rank option counts its measured loss, 4 bits adds what `bits:4` measured
beyond `bits:8`. Losses below zero (measurement noise) count as 0.

Costs come from the measured entries. A part measured alone (`prune:16x4:0.8`, `bits:4`,
`rank:16`) uses its entry; a combination (`prune:16x4:0.8` at 4 bits) is estimated from
the pruned entry less what 4 bits saved on the dense layer (`bits:8` minus `bits:4`: no
bytes in int8 containers, some gzip bytes) times the share of weights kept (non-zeros over
the dense layer's). Checked against the gzip size `tfcompress.planning.costs` computes for
every pruned layer at 4 bits of LeNet-300-100 and the small CNN (96 layer options, MNIST-5k,
one epoch of training, gzip level 6): 8% off on average, median 2-3% over, from -20% to
+19%; scaling the pruned size by the dense layer's 4-bit ratio instead came out 11-14% under
(median). Latency is the default interpreter's, or our kernels' where they claim the layer
and `kernels` is "all", or "auto" and they are faster. Our kernels take no 4-bit weights, so
a combination at 4 bits is the default interpreter's latency of its part scaled by the dense
layer's `bits:4` over `bits:8` default latency (`bits:4` is measured as exported, with INT4
weights: `tfcompress.planning.costs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfcompress.planning.options import LayerOption
from tfcompress.planning.sensitivity_result import Sensitivity, SensitivityEntry

QUANTITIES = ("bytes", "gzip_bytes", "latency_ms", "macs")
SIZES = ("bytes", "gzip_bytes")
KL_TIE = 0.01  # KL (nats) added to accuracy points, so equal measured drops rank by KL
# Element size of each export relative to the int8 sizes the entries hold.
EXPORT_SCALE = {"int8": 1.0, "dynamic": 1.0, "float16": 2.0, "float32": 4.0}


@dataclass(frozen=True)
class Loss:
    """Predicted loss parts: accuracy points (None without labels), KL, top-1 disagreement
    in points (100 * (1 - agreement)), all beyond the export alone."""

    drop: float | None = 0.0
    kl: float = 0.0
    disagreement: float = 0.0

    @classmethod
    def of(cls, entry: SensitivityEntry, labels: bool, clip: bool = True) -> Loss:
        """The entry's measured loss; `clip`: below zero (noise) counts as zero."""
        loss = cls(entry.accuracy_drop if labels else None, entry.kl, 100 * (1 - entry.agreement))
        return loss.clipped() if clip else loss

    def clipped(self) -> Loss:
        """Each part at least zero."""
        drop = None if self.drop is None else max(self.drop, 0.0)
        return Loss(drop, max(self.kl, 0.0), max(self.disagreement, 0.0))

    def __add__(self, other: Loss) -> Loss:
        drop = None if self.drop is None else self.drop + other.drop
        return Loss(drop, self.kl + other.kl, self.disagreement + other.disagreement)

    def beyond(self, reference: Loss) -> Loss:
        """What this loss adds to `reference`, at least 0 in each part."""
        drop = None if self.drop is None else max(self.drop - reference.drop, 0.0)
        return Loss(
            drop,
            max(self.kl - reference.kl, 0.0),
            max(self.disagreement - reference.disagreement, 0.0),
        )

    def points(self) -> float:
        """The accuracy measure in points: the drop with labels, else the disagreement; plus
        `KL_TIE * kl`, so that an option measured as free still ranks behind none."""
        base = self.disagreement if self.drop is None else self.drop
        return base + KL_TIE * self.kl

    def objective(self) -> float:
        """What a resource-limited plan minimises: `points()` with labels, else KL."""
        return self.kl if self.drop is None else self.points()


@dataclass(frozen=True)
class Candidate:
    """One choice for one layer."""

    layer: str
    prune: LayerOption | None
    rank: LayerOption | None
    bits: int | None
    loss: Loss
    costs: dict[str, float | None]
    kernels: bool = False  # whether the latency is our kernels'
    estimated: tuple[str, ...] = field(default_factory=tuple)  # quantities estimated

    @property
    def key(self) -> str:
        """`int8` (unchanged), `prune:16x4:0.8`, `prune:16x4:0.8+bits:4`, `bits:4`, `rank:16`."""
        parts = [o.key for o in (self.prune, self.rank) if o is not None]
        if self.bits == 4:
            parts.append("bits:4")
        return "+".join(parts) or "unchanged"

    def changes(self) -> bool:
        return self.key != "unchanged"


def _latency(entry: SensitivityEntry, kernels: str) -> tuple[float | None, bool]:
    plain, ours = entry.latency_ms, entry.latency_ms_kernels
    if kernels == "none" or ours is None:
        return plain, False
    if kernels == "all" or plain is None or ours < plain:
        return ours, True
    return plain, False


def _ratio(new: float | None, old: float | None) -> float | None:
    if new is None or old is None:
        return None
    return new / old if old else 1.0


@dataclass
class LayerTable:
    """The candidates of one layer, with its reference (unchanged) costs and export loss."""

    layer: str
    candidates: list[Candidate]
    reference: dict[str, float | None]
    export_loss: Loss
    notes: list[str] = field(default_factory=list)


def _costs(entry, scale, kernels, four=None, dense8=None):
    """Costs of `entry` at the export (sizes times `scale[name]`), at 4 bits when `four` is
    the dense `bits:4` entry (scaled by it over `dense8`, the dense `bits:8` one)."""
    latency, ours = _latency(entry, kernels)
    costs = {
        "bytes": float(entry.bytes) * scale["bytes"],
        "gzip_bytes": float(entry.gzip_bytes) * scale["gzip_bytes"],
        "latency_ms": latency,
        "macs": float(entry.macs),
    }
    if four is None:
        return costs, ours, ()
    # 4 bits saves on the stored values, not on where the zeros are: the dense layer's saving
    # in proportion to the weights kept.
    density = min(entry.nonzeros / dense8.nonzeros, 1.0) if dense8.nonzeros else 1.0
    for name in SIZES:
        saving = density * (getattr(dense8, name) - getattr(four, name)) * scale[name]
        costs[name] = max(costs[name] - saving, 0.0)
    # Our kernels do not claim INT4 weights: the default interpreter's latencies throughout.
    ratio = _ratio(four.latency_ms, dense8.latency_ms)
    plain = entry.latency_ms
    costs["latency_ms"] = None if plain is None or ratio is None else plain * ratio
    return costs, False, ("bytes", "gzip_bytes", "latency_ms")


def _size_scale(export: str, baseline, dense8) -> dict[str, float]:
    """Per size quantity, the export's size over the int8 size the entries hold: 1 for int8
    and dynamic; for float exports the float baseline's over `bits:8`'s (calibrated per
    layer), times the element size over float32's."""
    if export in ("int8", "dynamic"):
        return {"bytes": 1.0, "gzip_bytes": 1.0}
    element = EXPORT_SCALE[export] / EXPORT_SCALE["float32"]
    if dense8 is None:
        return {name: EXPORT_SCALE[export] for name in SIZES}
    return {
        name: element * (_ratio(getattr(baseline, name), getattr(dense8, name)) or 1.0)
        for name in SIZES
    }


def layer_table(
    sensitivity: Sensitivity, layer: str, export: str, kernels: str, labels: bool
) -> LayerTable:
    """Every candidate for `layer`, the unchanged one first."""
    options = sensitivity.options(layer)
    by_key = {o.key: sensitivity.entry(layer, o.key) for o in options}
    baseline = sensitivity.baseline(layer)
    dense8, dense4 = by_key.get("bits:8"), by_key.get("bits:4")
    notes = []
    scale = _size_scale(export, baseline, dense8)
    if export in ("int8", "dynamic") and dense8 is not None:
        unchanged, unchanged_scale = dense8, scale
    else:  # the float32 baseline, at the export's element size
        element = EXPORT_SCALE[export] / EXPORT_SCALE["float32"]
        unchanged, unchanged_scale = baseline, {name: element for name in SIZES}
        if export in ("int8", "dynamic"):
            notes.append("no bits:8 entry: the unchanged sizes are the float ones over 4")
    measured8 = export == "int8" and dense8 is not None
    eight_loss = Loss.of(dense8, labels) if measured8 else Loss.of(baseline, labels)
    # The export's own loss, summed over layers unclipped so that noise cancels.
    export_loss = Loss.of(dense8, labels, clip=False) if measured8 else eight_loss
    ref_costs, ref_ours, _ = _costs(unchanged, unchanged_scale, kernels)
    reference = dict(ref_costs, latency_ms=unchanged.latency_ms)
    zero = Loss(0.0 if labels else None)
    bits = 8 if export == "int8" else None
    candidates = [Candidate(layer, None, None, bits, zero, ref_costs, ref_ours)]
    four_loss = None
    if export == "int8" and dense4 is not None:
        four_loss = Loss.of(dense4, labels).beyond(eight_loss)
        costs, ours, _ = _costs(dense4, scale, kernels)
        candidates.append(Candidate(layer, None, None, 4, four_loss, costs, ours))
    unchanged_loss = Loss.of(baseline, labels)
    for option in options:
        if option.kind == "bits":
            continue
        entry = by_key[option.key]
        loss = Loss.of(entry, labels).beyond(unchanged_loss)
        prune = option if option.kind == "prune" else None
        rank = option if option.kind == "rank" else None
        costs, ours, _ = _costs(entry, scale, kernels)
        candidates.append(Candidate(layer, prune, rank, bits, loss, costs, ours))
        if four_loss is not None and dense8 is not None:
            costs, ours, estimated = _costs(entry, scale, kernels, dense4, dense8)
            candidates.append(
                Candidate(layer, prune, rank, 4, loss + four_loss, costs, ours, estimated)
            )
    return LayerTable(layer, candidates, reference, export_loss, notes)
