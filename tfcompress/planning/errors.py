"""`InfeasibleTargetError`: no plan meets the target, with the closest point that can be reached."""

from __future__ import annotations


class InfeasibleTargetError(ValueError):
    """Raised by `tfcompress.plan` when no choice of the measured options meets the target.

    Attributes:
        constraint: The target field that cannot be met (e.g. `"max_gzip_bytes"`).
        limit: Its value.
        closest: Predicted values (`bytes`, `gzip_bytes`, `latency_ms`, `macs`,
            `accuracy_drop`, ...) of the closest plan found, the most compressed one.
        minimum: Per resource limit, the least predicted value any plan reaches for that
            quantity alone.
    """

    def __init__(self, message: str, constraint: str, limit: float, closest: dict, minimum: dict):
        super().__init__(message)
        self.constraint = constraint
        self.limit = limit
        self.closest = closest
        self.minimum = minimum
