"""`HintDistillation`: match an intermediate student layer to a teacher layer (FitNets hints)."""

from __future__ import annotations

import keras

ADAPTERS = ("auto", "always", "never")


@keras.saving.register_keras_serializable(package="tfcompress")
class HintDistillation(keras.distillation.FeatureDistillation):
    """Feature (hint) distillation between named layers, with a learned adapter.

    Keras' `FeatureDistillation` needs the two features to have the same
    shape; a thin student rarely does. Here the `Distiller` puts a learned
    adapter on the student's feature when the widths (last axis) differ: a
    1x1 convolution on feature maps (Conv1D/2D/3D by rank), a Dense layer on
    vectors. The adapter trains with the student and is not part of
    `distiller.student`. Spatial sizes must match. A name may be a layer's own
    or that of the layer inside a pruning or QAT wrapper (`"fc1"` finds
    `prune_low_magnitude_fc1`).

    Args:
        teacher_layer_name: The teacher layer whose output is the hint.
        student_layer_name: The student layer trained to match it.
        loss: Loss between the (adapted) student feature and the teacher's
            (a Keras loss name, instance or function; default mean squared error).
        adapter: `"auto"` (an adapter only where widths differ), `"always"`,
            or `"never"` (widths must match).
        teacher_index: Which teacher gives the hint when there are several.

    Example:
        >>> from tfcompress.distillation import HintDistillation, SoftTargetDistillation
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_train[:64], data.y_train[:64]
        >>> teacher = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")])
        >>> student = tfcompress.make_student(teacher, width=0.25)
        >>> student.get_layer("fc1").units  # the teacher's has 64: an adapter bridges them
        16
        >>> hint = HintDistillation("fc1", "fc1")
        >>> distiller = tfcompress.Distiller(
        ...     teacher, student, distillation_losses=[SoftTargetDistillation(), hint],
        ...     distillation_loss_weights=[1.0, 0.1])
        >>> distiller.compile(
        ...     "adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = distiller.fit(x, y, epochs=1, verbose=0)
        >>> history.history["loss"][0] > 0
        True
    """

    def __init__(
        self,
        teacher_layer_name: str,
        student_layer_name: str,
        loss="mse",
        adapter: str = "auto",
        teacher_index: int = 0,
    ):
        for argument, value in (
            ("teacher_layer_name", teacher_layer_name),
            ("student_layer_name", student_layer_name),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"`{argument}` must be a layer name; distill final outputs with "
                    f"SoftTargetDistillation instead. Received: {argument}={value!r}"
                )
        if adapter not in ADAPTERS:
            raise ValueError(f"`adapter` must be one of {ADAPTERS}. Received: adapter={adapter!r}")
        if not isinstance(teacher_index, int) or teacher_index < 0:
            raise ValueError(
                "`teacher_index` must be a non-negative integer. "
                f"Received: teacher_index={teacher_index!r}"
            )
        super().__init__(
            loss=loss, teacher_layer_name=teacher_layer_name, student_layer_name=student_layer_name
        )
        self.adapter = adapter
        self.teacher_index = teacher_index

    def get_config(self) -> dict:
        config = super().get_config()
        return {**config, "adapter": self.adapter, "teacher_index": self.teacher_index}
