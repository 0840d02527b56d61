"""`SoftTargetDistillation`: KL divergence between softened teacher and student outputs."""

from __future__ import annotations

import keras

from tfcompress.distillation.schedules import Scalar, check_scalar, serialize_scalar, value_at


@keras.saving.register_keras_serializable(package="tfcompress")
class SoftTargetDistillation(keras.distillation.DistillationLoss):
    """Soft targets (Hinton et al. 2015): `T^2 * KL(softmax(t / T) || softmax(s / T))`.

    Teacher and student output logits. Scaling by `T^2` keeps the gradient
    magnitude independent of the temperature, so the weight of this loss
    against the label loss need not change with `T`. The KL divergence is
    computed from log-softmax (no clipping of small probabilities). Keras'
    `keras.distillation.LogitsDistillation` computes the same for a constant
    temperature; this class also takes a schedule of the training step.

    Args:
        temperature: `T` > 0, or a `keras.optimizers.schedules.LearningRateSchedule`
            of the training step (e.g. `PolynomialDecay(8.0, 1000, 2.0)`),
            checked at step 0.

    Example:
        >>> from tfcompress.distillation import SoftTargetDistillation
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_train[:64], data.y_train[:64]
        >>> teacher = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")])
        >>> student = tfcompress.make_student(teacher, width=0.25)
        >>> loss = SoftTargetDistillation(temperature=4.0)
        >>> distiller = tfcompress.Distiller(teacher, student, distillation_losses=loss)
        >>> distiller.compile(
        ...     "adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = distiller.fit(x, y, epochs=1, verbose=0)
        >>> history.history["loss"][0] > 0
        True
    """

    def __init__(self, temperature: Scalar = 4.0):
        self.temperature = check_scalar("temperature", temperature, positive=True)

    def compute_loss(self, teacher_outputs, student_outputs, step=0, **kwargs):
        temperature = value_at(self.temperature, step)
        teacher_log = keras.ops.log_softmax(teacher_outputs / temperature, axis=-1)
        student_log = keras.ops.log_softmax(student_outputs / temperature, axis=-1)
        kl = keras.ops.sum(keras.ops.exp(teacher_log) * (teacher_log - student_log), axis=-1)
        return keras.ops.mean(kl) * temperature * temperature

    def get_config(self) -> dict:
        return {"temperature": serialize_scalar(self.temperature)}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)
