"""`HardTargetDistillation`: cross-entropy against the teacher's predicted class."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfcompress")
class HardTargetDistillation(keras.distillation.DistillationLoss):
    """Cross-entropy of the student's logits on the teacher's argmax (pseudo-labels).

    Useful on a transfer set without labels, or when the teacher is a
    `.tflite` whose outputs are coarsely quantized. Weights are given to the
    `Distiller`, not here.

    Example:
        >>> from tfcompress.distillation import HardTargetDistillation, SoftTargetDistillation
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_train[:64], data.y_train[:64]
        >>> teacher = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")])
        >>> student = tfcompress.make_student(teacher, width=0.25)
        >>> distiller = tfcompress.Distiller(
        ...     teacher, student,
        ...     distillation_losses=[SoftTargetDistillation(4.0), HardTargetDistillation()],
        ...     distillation_loss_weights=[0.9, 0.1])
        >>> distiller.compile(
        ...     "adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = distiller.fit(x, y, epochs=1, verbose=0)
        >>> history.history["loss"][0] > 0
        True
    """

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        labels = keras.ops.argmax(teacher_outputs, axis=-1)
        losses = keras.losses.sparse_categorical_crossentropy(
            labels, student_outputs, from_logits=True
        )
        return keras.ops.mean(losses)

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)
