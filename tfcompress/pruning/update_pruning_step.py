"""`UpdatePruningStep`: the callback that advances pruning during `fit`."""

from __future__ import annotations

import keras

from tfcompress.pruning.prune_low_magnitude_wrapper import PruneLowMagnitude
from tfcompress.utils.surgery import collect


def collect_wrappers(layer: keras.layers.Layer) -> list[PruneLowMagnitude]:
    """Every pruning wrapper inside `layer` (models nested at any depth included)."""
    return collect(layer, PruneLowMagnitude)


class UpdatePruningStep(keras.callbacks.Callback):
    """Required callback for training pruning wrappers.

    Before each batch it asks each schedule whether this step is a pruning
    turn and, if so, recomputes the masks: per layer, or with one threshold per
    `pruning_group` (global pruning). The optimizer keeps pruned weights at zero
    through the wrappers' `MaskConstraint`s. The wrappers' `pruning_step`
    counts completed training steps and is saved with the model: after each
    batch the first wrapper's is advanced (one small write, whatever the number
    of layers), and all of them at the end of each epoch and of training;
    training resumes from the largest, so a checkpoint taken mid-epoch resumes
    at the right step. Training wrappers without this callback fails with a
    message that says to add it.

    Example:
        >>> model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(16, name="fc")],
        ...                          name="mlp")
        >>> pruned = tfcompress.prune_low_magnitude(model, tfcompress.ConstantSparsity(0.5, 0))
        >>> pruned.compile("sgd", "mse")
        >>> history = pruned.fit(np.ones((8, 32)), np.zeros((8, 16)), epochs=1, verbose=0,
        ...                      callbacks=[tfcompress.pruning.UpdatePruningStep()])
        >>> tfcompress.get_sparsity(pruned)
        {'mlp/prune_low_magnitude_fc/fc/kernel': 0.5}
    """

    def on_train_begin(self, logs=None):
        self._wrappers = collect_wrappers(self.model)
        if not self._wrappers:
            raise ValueError(
                f"UpdatePruningStep found no pruning wrappers in model {self.model.name!r}; "
                "wrap it with `tfcompress.prune_low_magnitude` first."
            )
        groups: dict[object, list[PruneLowMagnitude]] = {}
        for wrapper in self._wrappers:
            key = wrapper.pruning_group if wrapper.pruning_group is not None else id(wrapper)
            groups.setdefault(key, []).append(wrapper)
        self._groups = list(groups.values())
        self._step = max(int(keras.ops.convert_to_numpy(w.pruning_step)) for w in self._wrappers)
        self._step = max(self._step, 0)  # -1: never trained
        self._write_all_steps()

    def _write_all_steps(self) -> None:
        for wrapper in self._wrappers:
            wrapper.pruning_step.assign(self._step)

    def on_train_batch_begin(self, batch, logs=None):
        for group in self._groups:
            should_prune, sparsity = group[0].pruning_schedule(self._step)
            if not should_prune:
                continue
            if len(group) == 1:
                group[0].update_masks(sparsity)
            else:
                update_group(group, sparsity)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        self._wrappers[0].pruning_step.assign(self._step)

    def on_epoch_end(self, epoch, logs=None):
        self._write_all_steps()

    def on_train_end(self, logs=None):
        self._write_all_steps()


def update_group(group: list[PruneLowMagnitude], sparsity: float) -> None:
    """One threshold across all weights of the group (global pruning)."""
    scores = [wrapper.importance() for wrapper in group]
    flat = [s for per_wrapper in scores for s in per_wrapper]
    masks = iter(group[0].compute(flat, sparsity))
    for wrapper, per_wrapper in zip(group, scores):
        wrapper.set_masks([next(masks) for _ in per_wrapper], per_wrapper)
