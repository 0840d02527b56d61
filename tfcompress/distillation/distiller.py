"""`Distiller`: trains a (compressed) student from one or more frozen teachers.

Why this is not a subclass of `keras.distillation.Distiller`: Keras' class
takes exactly one teacher, which must be a Keras model, runs it inside every
training step, and hands feature losses the raw features (no adapter when
widths differ). A `.tflite` or callable teacher, several weighted teachers,
teacher outputs cached across epochs and learned hint adapters would each
override its constructor and its `compute_loss`, leaving nothing of the parent
but `call`. So this class composes with Keras instead: every loss is a
`keras.distillation.DistillationLoss` (Keras' own `LogitsDistillation` and
`FeatureDistillation` work here unchanged), hints subclass
`keras.distillation.FeatureDistillation`, temperatures and weights take Keras
`LearningRateSchedule`s, and training is plain `compile` / `fit`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfcompress.distillation.external_teacher import ExternalTeacher
from tfcompress.distillation.loss_terms import (
    check_compatibility,
    check_losses,
    comparisons,
    distillation_loss,
    feature_view,
    hint_layers,
)
from tfcompress.distillation.probabilities import (
    as_logits,
    note_probabilities,
    outputs_probabilities,
)
from tfcompress.distillation.schedules import (
    Scalar,
    check_scalar,
    is_zero,
    serialize_scalar,
    value_at,
)
from tfcompress.distillation.teacher_outputs import TeacherOutputs, unpack_inputs
from tfcompress.distillation.teachers import (
    Teacher,
    as_teacher,
    check_teacher,
    freeze,
    normalized_teacher_weights,
)
from tfcompress.utils.surgery import is_graph_model


@keras.saving.register_keras_serializable(package="tfcompress")
class Distiller(keras.Model):
    """Knowledge distillation: a student learns from teachers' outputs (and labels).

    The loss on each batch is

        alpha * label_loss(y, student(x))
        + sum_k w_k * sum_t v_t * loss_k(teacher_t(x), student(x))

    with `w_k` = `distillation_loss_weights`, `v_t` = the normalised
    `teacher_weights` (a hint compares one teacher's layer with a student
    layer instead), plus the student's own regularization losses. Without
    labels (a transfer set: `fit(x)`), or for labels equal to the
    `ignore_class` of the compiled loss, only the teachers teach. Use it like
    any Keras model: `compile(optimizer, loss=...)` (the label loss), `fit`,
    `evaluate`, `predict` (the student's outputs), `save` as `.keras`; export
    `distiller.student` alone. Teachers and the student output logits; one
    that ends in a softmax (or whose outputs on a probe batch are
    non-negative and sum to 1) is distilled through its log-probabilities,
    with one warning naming it.

    Keras teachers are frozen (with one warning if they were trainable).
    Callbacks see the student: `layers` lists the student and the hint
    adapters, not the teachers, so `tfcompress.UpdatePruningStep()` drives a
    pruned student's wrappers through `fit`; strip the result with
    `strip_pruning` / `strip_quantization`.

    Args:
        teacher: A Keras model, `.tflite` bytes, a path to a `.tflite` file, a
            `TFLiteModel`, a callable (numpy batch -> outputs), or a list of
            these (several teachers).
        student: A Sequential or functional model with one input and one output.
        distillation_losses: A `keras.distillation.DistillationLoss` or a list
            (`SoftTargetDistillation`, `HardTargetDistillation`,
            `HintDistillation`, Keras' `LogitsDistillation`/`FeatureDistillation`);
            default `SoftTargetDistillation(temperature=4.0)`. Give Keras'
            `LogitsDistillation` `loss=keras.losses.KLDivergence()`: with its
            default `"kl_divergence"` it skips the softmax (Keras 3.15).
        distillation_loss_weights: One weight per loss (default 1.0 each): a
            number >= 0 or a `LearningRateSchedule` of the training step.
        alpha: Weight of the label loss, a number >= 0 or a schedule.
        teacher_weights: One weight >= 0 per teacher (default equal); normalised to sum 1.
        cache_teacher_outputs: Run the teachers once per training (and
            validation) sample before `fit` and reuse their outputs and hint
            features in every epoch, and in later `fit` calls on the same
            samples in any order, while the teachers' weights stay the same.
            Needs arrays, not datasets. Teachers run in inference mode either
            way, so the losses are the same; only the teachers' passes go.
        name: Model name.
        **kwargs: Base `keras.Model` arguments.

    Raises:
        ValueError: Output shapes that differ, an unknown hint layer (the
            message lists the layers), a temperature <= 0, all weights zero.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_train[:64], data.y_train[:64]
        >>> teacher = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
        >>> student = tfcompress.distillation.make_student(teacher, width=0.25)
        >>> distiller = tfcompress.Distiller(
        ...     teacher, student, alpha=0.1, cache_teacher_outputs=True)
        >>> distiller.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> history = distiller.fit(x, y, epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
        >>> content = tfcompress.export_tflite(distiller.student, "student.tflite")
        >>> distiller.student.count_params() < teacher.count_params()
        True
    """

    def __init__(
        self,
        teacher,
        student: keras.Model,
        distillation_losses=None,
        distillation_loss_weights: list[Scalar] | None = None,
        alpha: Scalar = 0.1,
        teacher_weights: list[float] | None = None,
        cache_teacher_outputs: bool = False,
        name: str = "distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        _check_student(student)
        given = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
        if not given:
            raise ValueError("`teacher` is an empty list; give at least one teacher.")
        teachers = [as_teacher(t, tuple(student.inputs[0].shape[1:])) for t in given]
        freeze(teachers)
        self.teachers = teachers
        self.student = student
        self.teacher_weights = normalized_teacher_weights(teacher_weights, len(teachers))
        self.distillation_losses = check_losses(distillation_losses)
        if distillation_loss_weights is None:
            distillation_loss_weights = [1.0] * len(self.distillation_losses)
        if len(distillation_loss_weights) != len(self.distillation_losses):
            raise ValueError(
                f"`distillation_loss_weights` needs one weight per loss "
                f"({len(self.distillation_losses)}). "
                f"Received: distillation_loss_weights={distillation_loss_weights!r}"
            )
        self.distillation_loss_weights = [
            check_scalar(f"distillation_loss_weights[{i}]", w)
            for i, w in enumerate(distillation_loss_weights)
        ]
        self.alpha = check_scalar("alpha", alpha)
        if is_zero(self.alpha) and all(is_zero(w) for w in self.distillation_loss_weights):
            raise ValueError(
                "All loss weights are zero, so nothing would train the student. Received: "
                f"alpha={alpha!r}, distillation_loss_weights={distillation_loss_weights!r}"
            )
        self.cache_teacher_outputs = bool(cache_teacher_outputs)
        for teacher in self.teachers:
            check_teacher(teacher, self.student)
            check_compatibility(self.distillation_losses, teacher, self.student)
        sample = (tuple(student.inputs[0].shape[1:]), student.inputs[0].dtype)
        probability_teachers = frozenset(
            i for i, t in enumerate(self.teachers) if outputs_probabilities(t, *sample)
        )
        for i in sorted(probability_teachers):
            note_probabilities("Teacher", self.teachers[i].name)
        self._student_probabilities = outputs_probabilities(student, *sample)
        if self._student_probabilities:
            note_probabilities("Student", student.name)
        self._terms = [
            comparisons(loss, self.teachers, self.teacher_weights, self.student)
            for loss in self.distillation_losses
        ]
        self.adapters = [
            pair.adapter for pairs in self._terms for pair in pairs if pair.adapter is not None
        ]
        teacher_layers, student_layers = hint_layers(self._terms)
        self._teacher_outputs = TeacherOutputs(self.teachers, teacher_layers, probability_teachers)
        self._student_view = None  # the student's output and hint features, in one pass
        if student_layers:
            keys = [None, *student_layers]
            self._student_view = feature_view(self.student, student_layers, keys)
        self._label_loss = self._label_loss_config = None
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.built = True  # every part is built; the distiller itself has no weights

    @property
    def teacher(self) -> Teacher:
        """The teacher (with several, use `teachers`)."""
        if len(self.teachers) > 1:
            raise ValueError(
                f"Distiller {self.name!r} has {len(self.teachers)} teachers; use `.teachers`."
            )
        return self.teachers[0]

    @property
    def layers(self) -> list[keras.layers.Layer]:
        """The student and the hint adapters: what training changes (teachers are left out)."""
        return [self.student, *self.adapters]

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Configures training of the student.

        Args:
            optimizer: The student's (and adapters') optimizer.
            loss: The label loss, weighted by `alpha` (e.g.
                `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`,
                with `ignore_class=-1` for partly labelled data). None is fine
                when the data has no labels. `sample_weight` weights it when it
                is a `keras.losses.Loss`.
            metrics: Metrics on the student's outputs against the labels.
            **kwargs: Other `keras.Model.compile` arguments. With a `.tflite`
                or callable teacher, `jit_compile` is turned off.
        """
        self._label_loss = None if loss is None else keras.losses.get(loss)
        self._label_loss_config = loss
        if any(isinstance(t, ExternalTeacher) for t in self.teachers):
            if kwargs.get("jit_compile") is True:
                raise ValueError(
                    "A .tflite or callable teacher runs through tf.numpy_function, which XLA "
                    "cannot compile. Received: jit_compile=True"
                )
            kwargs["jit_compile"] = False
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def get_compile_config(self) -> dict:
        config = super().get_compile_config()
        if config:
            config["loss"] = keras.saving.serialize_keras_object(self._label_loss_config)
        return config

    def compile_from_config(self, config: dict) -> None:
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        inputs, _ = unpack_inputs(inputs)
        return self.student(inputs, training=training)

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`; with `cache_teacher_outputs`, teachers run once per array first."""
        if self.cache_teacher_outputs:
            x = self._teacher_outputs.attach(x, "x")
            validation = kwargs.get("validation_data")
            if isinstance(validation, (tuple, list)) and validation:
                kwargs["validation_data"] = (
                    self._teacher_outputs.attach(validation[0], "validation_data"),
                    *validation[1:],
                )
        return super().fit(x, y, **kwargs)

    def teacher_outputs(self, x: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Every teacher's output (key `"i"`) and hint features (`"i:layer"`) for the array `x`.

        Cached per sample while the teachers' weights stay the same: a
        reshuffled copy, or a subset, of data seen before costs no teacher pass.
        """
        return self._teacher_outputs.predict(x, batch_size)

    def _label_term(self, y, y_pred, sample_weight):
        if y is None or is_zero(self.alpha):
            return 0.0
        if self._label_loss is None:
            raise ValueError(
                f"The data has labels and alpha={self.alpha!r} weights a loss on them, but "
                "`compile` got no `loss`. Pass e.g. "
                "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), or set "
                "alpha=0 to learn from the teachers alone."
            )
        if isinstance(self._label_loss, keras.losses.Loss):
            # A Keras loss divides by the replicas in sync (see `compute_loss`): undo it here.
            return self._label_loss(y, y_pred, sample_weight=sample_weight) * _replicas()
        return keras.ops.mean(self._label_loss(y, y_pred))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        inputs, cached = unpack_inputs(x)
        teacher = cached if cached is not None else self._teacher_outputs(inputs)
        if self._student_view is not None:  # one pass gives the output and the hint features
            student = self._student_view(inputs, training=training)
        else:
            student = {None: self(inputs, training=training) if y_pred is None else y_pred}
        step = self.optimizer.iterations if self.compiled else 0
        label_loss = self._label_term(y, student[None], sample_weight)
        if self._student_probabilities:  # the label loss keeps them, distillation takes logits
            student = {**student, None: as_logits(student[None])}
        distillation = distillation_loss(
            self.distillation_losses,
            self.distillation_loss_weights,
            self._terms,
            teacher,
            student,
            step,
        )
        total = value_at(self.alpha, step) * label_loss + distillation
        for regularization in self.student.losses:
            total = total + regularization
        self.student_loss_tracker.update_state(label_loss)
        self.distillation_loss_tracker.update_state(distillation)
        # Under a tf.distribute strategy the replicas' gradients are summed: each replica's
        # loss is divided by their number, as Keras does for its own losses, so that the
        # step is the global batch's mean (as in one process), not that many times it.
        return total / _replicas()

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:  # a transfer set: no labels to measure against
            return self.get_metrics_result()
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self) -> dict:
        teachers = [_architecture(t) for t in self.teachers]
        return {
            **super().get_config(),
            "teacher": teachers[0] if len(teachers) == 1 else teachers,
            "student": _architecture(self.student),
            "distillation_losses": [
                keras.saving.serialize_keras_object(loss) for loss in self.distillation_losses
            ],
            "distillation_loss_weights": [
                serialize_scalar(w) for w in self.distillation_loss_weights
            ],
            "alpha": serialize_scalar(self.alpha),
            "teacher_weights": list(self.teacher_weights),
            "cache_teacher_outputs": self.cache_teacher_outputs,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        teachers = config.pop("teacher")
        teachers = [
            keras.saving.deserialize_keras_object(t)
            for t in (teachers if isinstance(teachers, list) else [teachers])
        ]
        for teacher in teachers:
            teacher.trainable = False  # saved frozen: no second warning
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        config["distillation_losses"] = [
            keras.saving.deserialize_keras_object(loss) for loss in config["distillation_losses"]
        ]
        return cls(teachers if len(teachers) > 1 else teachers[0], **config)


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _architecture(model: keras.layers.Layer) -> dict:
    """A teacher's or the student's config, without its own compile state."""
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return config


def _check_student(student) -> None:
    if not isinstance(student, keras.Model):
        raise TypeError(f"`student` must be a keras.Model. Received: type {type(student).__name__}")
    if not is_graph_model(student):
        raise ValueError(
            f"Student {student.name!r} is a subclassed model; wrap it in a functional one: "
            "`inputs = keras.Input(shape); keras.Model(inputs, student(inputs))`."
        )
    if len(student.inputs) != 1 or len(student.outputs) != 1:
        raise ValueError(
            f"Student {student.name!r} has {len(student.inputs)} inputs and "
            f"{len(student.outputs)} outputs; the Distiller takes one of each."
        )
