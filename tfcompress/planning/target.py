"""`Target`: the limits a compressed model must meet (size, latency, MACs, accuracy drop)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tfcompress.planning.schema import check_keys, check_mapping, check_number

# Target field -> (quantity it limits, unit): the quantity is the key of `plan_info["predicted"]`.
QUANTITIES = {
    "max_bytes": ("bytes", "bytes"),
    "max_gzip_bytes": ("gzip_bytes", "bytes"),
    "max_latency_ms": ("latency_ms", "ms"),
    "max_macs": ("macs", "MACs"),
    "max_accuracy_drop": ("accuracy_drop", "points"),
}


@dataclass(frozen=True)
class Target:
    """Limits for `tfcompress.plan` and `tfcompress.compress`; give at least one.

    Args:
        max_bytes: Largest int8 `.tflite` size of the weights, in bytes (> 0).
        max_gzip_bytes: Largest gzip-compressed size, in bytes (> 0).
        max_latency_ms: Largest batch-1 latency in the interpreter on this CPU, in ms (> 0).
        max_macs: Most multiply-accumulates per sample (> 0).
        max_accuracy_drop: Most accuracy lost against the original, in percentage points
            (>= 0). Alone it is planned for (the smallest gzip size within it); beside a
            resource limit it is checked on the measured result instead, since fine-tuning
            recovers most of what the plan predicts.

    Example:
        >>> from tfcompress.planning.target import Target
        >>> target = Target(max_gzip_bytes=60_000, max_accuracy_drop=1.0)
        >>> target.limits()
        {'max_gzip_bytes': 60000.0, 'max_accuracy_drop': 1.0}
        >>> Target.from_dict(target.to_dict()) == target
        True
        >>> Target.from_ratio({"float_gzip_bytes": 800_000}, gzip=40).limits()
        {'max_gzip_bytes': 20000.0}
        >>> Target(max_bytes=0)
        Traceback (most recent call last):
        ...
        ValueError: `max_bytes` must be a number in (0, inf). Received: max_bytes=0
    """

    max_bytes: float | None = None
    max_gzip_bytes: float | None = None
    max_latency_ms: float | None = None
    max_macs: float | None = None
    max_accuracy_drop: float | None = None

    def __post_init__(self):
        for name in QUANTITIES:
            value = getattr(self, name)
            if value is not None:
                checked = check_number(value, name, 0.0, low_open=name != "max_accuracy_drop")
                object.__setattr__(self, name, checked)
        if not self.limits():
            raise ValueError(
                f"A Target needs at least one limit: {', '.join(QUANTITIES)}. Received none."
            )

    @classmethod
    def from_ratio(
        cls,
        sensitivity: Any,
        gzip: float | None = None,
        latency: float | None = None,
        max_accuracy_drop: float | None = None,
    ) -> Target:
        """Limits relative to the measured model: `gzip=40` means 40x smaller than its float
        `.tflite` after gzip, `latency=2` twice as fast as its int8 `.tflite`.

        Args:
            sensitivity: A `Sensitivity` (or its `model` dict, with `float_gzip_bytes`
                and `latency_ms`).
            gzip: How many times smaller than the float gzip size (> 0).
            latency: How many times faster than the int8 latency (> 0).
            max_accuracy_drop: As in the constructor.
        """
        model = sensitivity if isinstance(sensitivity, Mapping) else sensitivity.model
        limits = {"max_accuracy_drop": max_accuracy_drop}
        for name, ratio, key, field_name in (
            ("gzip", gzip, "float_gzip_bytes", "max_gzip_bytes"),
            ("latency", latency, "latency_ms", "max_latency_ms"),
        ):
            if ratio is None:
                continue
            ratio = check_number(ratio, name, 0.0, low_open=True)
            if model.get(key) is None:
                raise ValueError(
                    f"`{name}` is relative to the model's {key}, which the sensitivity "
                    f"lacks. Received: {name}={ratio!r}"
                )
            limits[field_name] = model[key] / ratio
        return cls(**limits)

    def limits(self) -> dict[str, float]:
        """The limits given, field name -> value, in field order."""
        return {name: getattr(self, name) for name in QUANTITIES if getattr(self, name) is not None}

    def resource_limits(self) -> dict[str, float]:
        """The limits given other than `max_accuracy_drop`."""
        return {k: v for k, v in self.limits().items() if k != "max_accuracy_drop"}

    def to_dict(self) -> dict[str, float]:
        """The limits given (as `limits()`), for JSON or YAML."""
        return self.limits()

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        """Reads the keys of `to_dict()`; unknown keys are errors (with the closest known)."""
        data = check_mapping(data, "target")
        check_keys(data, QUANTITIES, "")
        return cls(**data)

    def replace(self, **changes: Any) -> Target:
        """A copy with some limits changed (checked again), as `dataclasses.replace`."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        parts = [
            f"{QUANTITIES[k][0]} <= {v:g} {QUANTITIES[k][1]}" for k, v in self.limits().items()
        ]
        return "Target(" + ", ".join(parts) + ")"
