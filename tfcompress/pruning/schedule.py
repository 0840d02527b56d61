"""`PruningSchedule`: when to update the masks, and to which sparsity."""

from __future__ import annotations

import keras


def check_sparsity(name: str, value: float) -> float:
    """Raises unless `0 <= value < 1`; returns it as a float."""
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="tfcompress")
class PruningSchedule:
    """Base class of pruning schedules: `schedule(step) -> (should_prune, sparsity)`.

    Masks are recomputed at step `step` when `should_prune` is True, to reach
    `sparsity`. A step is in the pruning range when `begin_step <= step` and
    (`step <= end_step` or `end_step == -1`), and it is a pruning turn when
    `(step - begin_step) % frequency == 0`, as in tfmot.

    Subclass it and implement `sparsity_at(step)` (and `get_config` if the
    constructor takes more arguments) for a custom schedule.

    Args:
        begin_step: First step at which masks are updated (>= 0).
        end_step: Last step at which masks are updated, or -1 for no end.
        frequency: Masks are updated every `frequency` steps (>= 1).
    """

    def __init__(self, begin_step: int, end_step: int, frequency: int):
        for name, value in (("begin_step", begin_step), ("frequency", frequency)):
            if not isinstance(value, int) or value < (1 if name == "frequency" else 0):
                bound = "1" if name == "frequency" else "0"
                raise ValueError(
                    f"`{name}` must be an integer >= {bound}. Received: {name}={value!r}"
                )
        if not isinstance(end_step, int) or (end_step != -1 and end_step <= begin_step):
            raise ValueError(
                "`end_step` must be -1 (no end) or greater than `begin_step`. "
                f"Received: begin_step={begin_step}, end_step={end_step!r}"
            )
        self.begin_step, self.end_step, self.frequency = begin_step, end_step, frequency

    def should_prune(self, step: int) -> bool:
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    def sparsity_at(self, step: int) -> float:
        raise NotImplementedError("PruningSchedule subclasses implement `sparsity_at(step)`.")

    @property
    def target_sparsity(self) -> float:
        """The sparsity the schedule ends at."""
        raise NotImplementedError

    def with_target(self, sparsity: float) -> PruningSchedule:
        """A copy of this schedule that ends at `sparsity` (per-layer overrides)."""
        raise NotImplementedError

    def __call__(self, step: int) -> tuple[bool, float]:
        return self.should_prune(step), self.sparsity_at(step)

    def get_config(self) -> dict:
        return {
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }

    @classmethod
    def from_config(cls, config: dict) -> PruningSchedule:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
