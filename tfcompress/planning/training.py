"""How `compress` trains: the data, Keras' verbosity, the loss, distillation from the original."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import keras
import numpy as np

from tfcompress.distillation import Distiller, SoftTargetDistillation
from tfcompress.distillation.probabilities import outputs_probabilities


def resolve_verbose(verbose: int | str) -> int:
    """Keras `fit` verbosity: "auto" is a progress bar on a terminal, one line per epoch
    otherwise (as the demo does); 0 is silent (and prints nothing else either)."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")
    return verbose


@dataclass
class Training:
    """How the pipeline trains: the data, Keras' verbosity, the loss, and the teacher.

    `teacher` is the original model when the recipe distils (its `alpha` and
    `temperature`), else None: then every step trains on the labels alone.
    """

    x: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None
    verbose: int
    from_logits: bool
    teacher: keras.Model | None = None
    alpha: float = 0.5
    temperature: float = 4.0

    @classmethod
    def for_recipe(cls, original: keras.Model, recipe: dict, x, y, validation, verbose: int):
        """The training of `recipe` on `original` (whose outputs decide the loss)."""
        shape = tuple(original.inputs[0].shape[1:])
        from_logits = not outputs_probabilities(original, shape, original.inputs[0].dtype)
        distill = recipe.get("distillation")
        if not distill:
            return cls(x, y, validation, verbose, from_logits)
        return cls(
            x,
            y,
            validation,
            verbose,
            from_logits,
            original,
            distill["alpha"],
            distill["temperature"],
        )

    def say(self, text: str) -> None:
        """Prints a step's headline unless silent."""
        if self.verbose:
            print(text)

    def steps(self, epochs: int, batch_size: int) -> int:
        """Training steps in `epochs` epochs of batches of `batch_size`."""
        return epochs * -(-len(self.x) // batch_size)

    def fit(
        self,
        model: keras.Model,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        callbacks: list | None = None,
        distill: bool = True,
    ) -> keras.Model:
        """Trains `model` (through a `Distiller` when there is a teacher and `distill`);
        returns it. Adam, sparse cross-entropy, accuracy, as the demos train."""
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        trained = model
        if self.teacher is not None and distill:
            trained = Distiller(
                self.teacher,
                model,
                SoftTargetDistillation(self.temperature),
                alpha=self.alpha,
                cache_teacher_outputs=True,
            )
        trained.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"]
        )
        trained.fit(
            self.x,
            self.y,
            epochs=epochs,
            batch_size=batch_size,
            verbose=self.verbose,
            callbacks=callbacks or [],
            validation_data=self.validation,
        )
        return model
