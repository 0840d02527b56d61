"""`PolynomialDecay`: sparsity rising from an initial to a final value."""

from __future__ import annotations

import keras

from tfcompress.pruning.schedule import PruningSchedule, check_sparsity


@keras.saving.register_keras_serializable(package="tfcompress")
class PolynomialDecay(PruningSchedule):
    """Sparsity rising as `s(t) = s_f + (s_i - s_f) * (1 - p)^power`.

    `p = clip((t - begin_step) / (end_step - begin_step), 0, 1)`.
    Same arguments and formula as `tfmot.sparsity.keras.PolynomialDecay`:
    pruning is fast early, when many weights are redundant, and slow near the
    end. Masks are updated every `frequency` steps in `[begin_step, end_step]`.

    Args:
        initial_sparsity: Sparsity at `begin_step`, in [0, 1).
        final_sparsity: Sparsity from `end_step` on, in [0, 1).
        begin_step: First step at which masks are updated.
        end_step: Last step at which masks are updated (> `begin_step`).
        power: Exponent of the decay.
        frequency: Masks are updated every `frequency` steps.

    Example:
        >>> schedule = tfcompress.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=1000)
        >>> round(schedule.sparsity_at(500), 4)
        0.7875
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ):
        if end_step == -1:
            raise ValueError(
                "PolynomialDecay needs an `end_step` greater than `begin_step`. "
                f"Received: end_step={end_step}"
            )
        super().__init__(begin_step, end_step, frequency)
        self.initial_sparsity = check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = check_sparsity("final_sparsity", final_sparsity)
        if not power > 0:
            raise ValueError(f"`power` must be > 0. Received: power={power!r}")
        self.power = power

    def sparsity_at(self, step: int) -> float:
        progress = (step - self.begin_step) / (self.end_step - self.begin_step)
        progress = min(1.0, max(0.0, progress))
        decay = (1.0 - progress) ** self.power
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * decay

    @property
    def target_sparsity(self) -> float:
        return self.final_sparsity

    def with_target(self, sparsity: float) -> PolynomialDecay:
        return PolynomialDecay(
            min(self.initial_sparsity, sparsity),
            sparsity,
            self.begin_step,
            self.end_step,
            self.power,
            self.frequency,
        )

    def get_config(self) -> dict:
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            **super().get_config(),
            "power": self.power,
        }
