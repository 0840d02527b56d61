"""`ConstantSparsity`: one sparsity from `begin_step` on."""

from __future__ import annotations

import keras

from tfcompress.pruning.schedule import PruningSchedule, check_sparsity


@keras.saving.register_keras_serializable(package="tfcompress")
class ConstantSparsity(PruningSchedule):
    """Prunes to `target_sparsity` every `frequency` steps from `begin_step` on.

    Same arguments and meaning as `tfmot.sparsity.keras.ConstantSparsity`.

    Args:
        target_sparsity: Fraction of weights set to zero, in [0, 1).
        begin_step: First step at which masks are updated.
        end_step: Last step at which masks are updated, or -1 for no end.
        frequency: Masks are updated every `frequency` steps.

    Example:
        >>> schedule = tfcompress.ConstantSparsity(0.8, begin_step=0, frequency=100)
        >>> schedule(200)
        (True, 0.8)
    """

    def __init__(
        self, target_sparsity: float, begin_step: int, end_step: int = -1, frequency: int = 100
    ):
        super().__init__(begin_step, end_step, frequency)
        self._target = check_sparsity("target_sparsity", target_sparsity)

    def sparsity_at(self, step: int) -> float:
        return self._target

    @property
    def target_sparsity(self) -> float:
        return self._target

    def with_target(self, sparsity: float) -> ConstantSparsity:
        return ConstantSparsity(sparsity, self.begin_step, self.end_step, self.frequency)

    def get_config(self) -> dict:
        return {"target_sparsity": self._target, **super().get_config()}
