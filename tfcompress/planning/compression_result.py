"""`CompressionResult`: what `compress` made, measured, and where it wrote it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import keras

from tfcompress.reporting import ReportComparison


@dataclass
class CompressionResult:
    """The outcome of `tfcompress.compress`.

    Attributes:
        tflite: The `.tflite` bytes (int8 unless the recipe exports another mode).
        model: The compressed Keras model, stripped (plain layers, zeros and
            shared values in place).
        recipe: The `Recipe` that was executed (planned, or the one given);
            `recipe.plan_info` says why each layer got its choice when planned.
        report: Before (the float model and its float32 `.tflite`) and after
            (the compressed model and `tflite`), measured on the validation data.
        targets: Per target quantity (`max_gzip_bytes`, ...):
            `{"limit", "predicted", "measured", "met"}`; `measured` comes from
            the `.tflite` in the interpreter, `predicted` from the plan (None when
            the recipe was given).
        kernels: `compare_kernels`' summary of the `.tflite` with and without
            our kernels, or None (not int8, `kernels: none`, or the library is
            missing: see `notes`).
        agreement: Fraction of validation samples whose top-1 is the same in
            the `.tflite` as in the Keras model it was exported from.
        files: What was written: name (`"model.tflite"`, ...) -> path; empty
            without `output_dir`.
        notes: What was skipped, and why; what each re-plan did.
        attempts: Per plan run for a target (empty with a given recipe): the limits it
            was `planned_for`, the `correction` (limit -> predicted / measured factor of
            the plan before; empty for the first), its changed `layers`, its `targets`
            as measured against the target given, `met` and `kept` (the one returned).
        seconds: Wall time of `compress`.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(32, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")])
        >>> result = tfcompress.compress(
        ...     model, (data.x_train[:256], data.y_train[:256]),
        ...     recipe=tfcompress.Recipe(), verbose=0, latency_runs=5)
        >>> result.tflite[4:8]
        b'TFL3'
        >>> sorted(result.to_dict())[:3]
        ['agreement', 'attempts', 'files']
    """

    tflite: bytes
    model: keras.Model
    recipe: Any
    report: ReportComparison
    targets: dict[str, dict] = field(default_factory=dict)
    kernels: dict | None = None
    agreement: float | None = None
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    attempts: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def met(self) -> bool:
        """Whether every target was met as measured (True without targets)."""
        return all(t["met"] for t in self.targets.values())

    def missed(self) -> list[str]:
        """One sentence per target missed as measured."""
        return [
            f"{name}: measured {t['measured']:,.4g}, limit {t['limit']:,.4g}"
            + ("" if t["predicted"] is None else f" (the plan predicted {t['predicted']:,.4g})")
            for name, t in self.targets.items()
            if not t["met"]
        ]

    def to_dict(self) -> dict:
        """Plain data: the recipe, the report, targets, kernels, agreement, files, notes,
        attempts."""
        return {
            "recipe": self.recipe.to_dict(),
            "plan": getattr(self.recipe, "plan_info", None),
            "report": self.report.to_dict(),
            "targets": self.targets,
            "met": self.met,
            "kernels": self.kernels,
            "agreement": self.agreement,
            "tflite_bytes": len(self.tflite),
            "files": self.files,
            "notes": self.notes,
            "attempts": self.attempts,
            "seconds": self.seconds,
        }

    def to_json(self) -> str:
        """`to_dict()` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, default=_plain)

    def __str__(self) -> str:
        lines = [self.report.to_text().rstrip()]
        if self.agreement is not None:
            lines.append(
                f"top-1 agreement of the .tflite with its Keras model: {self.agreement:.1%}"
            )
        for name, t in self.targets.items():
            verdict = "met" if t["met"] else "MISSED"
            lines.append(
                f"target {name} <= {t['limit']:,.4g}: measured {t['measured']:,.4g} ({verdict})"
            )
        if len(self.attempts) > 1:
            lines += [_attempt_line(i + 1, a) for i, a in enumerate(self.attempts)]
        lines += self.notes
        return "\n".join(lines)


def _attempt_line(number: int, attempt: dict) -> str:
    """`plan 2 for max_gzip_bytes <= 4,500 (x0.5): met (kept)`."""
    corrected = attempt["correction"]
    budget = ", ".join(
        f"{name} <= {attempt['planned_for'][name]:,.4g} (x{factor:.3g})"
        for name, factor in corrected.items()
    )
    missed = [name for name, t in attempt["targets"].items() if not t["met"]]
    verdict = "met" if attempt["met"] else "missed " + ", ".join(missed)
    return f"plan {number} for {budget or 'the target as given'}: {verdict}" + (
        " (kept)" if attempt["kept"] else ""
    )


def _plain(value: Any) -> Any:
    """numpy scalars and other strays in JSON."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
