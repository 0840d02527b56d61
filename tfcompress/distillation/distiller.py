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

import hashlib
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfcompress.distillation.external_teacher import ExternalTeacher
from tfcompress.distillation.hint_distillation import HintDistillation
from tfcompress.distillation.schedules import (
    Scalar,
    check_scalar,
    is_zero,
    serialize_scalar,
    value_at,
)
from tfcompress.distillation.soft_target_distillation import SoftTargetDistillation
from tfcompress.distillation.teachers import (
    Teacher,
    as_teacher,
    compatible,
    find_layer,
    freeze,
    output_shape,
    teachers_digest,
)
from tfcompress.utils.surgery import is_graph_model

# Cached teacher outputs travel with the inputs through `fit` as {INPUTS: x, CACHED: {...}}.
INPUTS, CACHED = "inputs", "teacher_outputs"
ADAPTERS = {2: keras.layers.Dense, 3: keras.layers.Conv1D, 4: keras.layers.Conv2D,
            5: keras.layers.Conv3D}  # fmt: skip


@dataclass
class _Pair:
    """One comparison made by a loss: a teacher's output or layer with the student's."""

    teacher: int  # the teacher's index
    teacher_layer: str | None  # None: the teacher's output
    student_layer: str | None  # None: the student's output
    weight: float  # the teacher's weight (1 for a hint)
    adapter: keras.layers.Layer | None = None

    @property
    def teacher_key(self) -> str:
        """Where the teacher tensor is in `teacher_outputs`: `"i"` or `"i:layer"`."""
        return _key(self.teacher, self.teacher_layer)


def _key(teacher: int, layer: str | None) -> str:
    return str(teacher) if layer is None else f"{teacher}:{layer}"


@dataclass
class _View:
    """A model returning several tensors, and the key of each (kept out of Keras tracking)."""

    keys: list
    model: keras.layers.Layer


class _OutputCache:
    """Teacher outputs by sample: rows seen before, in any order or subset, are not recomputed.

    Each input row is keyed by a digest of its bytes; everything is forgotten
    when the teachers' weights change.
    """

    def __init__(self):
        self.teachers = None
        self.rows: dict[bytes, int] = {}
        self.outputs: dict[str, np.ndarray] = {}

    def lookup(self, x: np.ndarray, teachers: str, compute) -> dict[str, np.ndarray]:
        """The outputs for each row of `x`; `compute(rows)` runs the teachers on new rows only."""
        if teachers != self.teachers:
            self.teachers, self.rows, self.outputs = teachers, {}, {}
        flat = np.ascontiguousarray(x).reshape(len(x), -1)
        keys = [hashlib.blake2b(row.data, digest_size=16).digest() for row in flat]
        new = {}
        for i, key in enumerate(keys):
            if key not in self.rows and key not in new:
                new[key] = i
        if new:
            computed = compute(x[list(new.values())])
            start = len(self.rows)
            self.rows.update((key, start + j) for j, key in enumerate(new))
            self.outputs = {k: np.concatenate([self.outputs[k], v]) if self.outputs else v
                            for k, v in computed.items()}  # fmt: skip
        positions = np.fromiter((self.rows[key] for key in keys), dtype=np.int64, count=len(keys))
        return {k: v[positions] for k, v in self.outputs.items()}


def _unpack(x):
    if isinstance(x, dict) and CACHED in x:
        return x[INPUTS], x[CACHED]
    return x, None


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
    `distiller.student` alone. Teachers output logits, like the student.

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
        >>> student = tfcompress.distillation.make_student(teacher, width=0.25)
        >>> distiller = Distiller(teacher, student, alpha=0.1, cache_teacher_outputs=True)
        >>> distiller.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> distiller.fit(x_train, y_train, epochs=10)
        >>> tfcompress.export_tflite(distiller.student, "student.tflite")
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
        self.teacher_weights = _teacher_weights(teacher_weights, len(teachers))
        self.distillation_losses = _losses(distillation_losses)
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
        self._check_outputs()
        adapters: list[keras.layers.Layer] = []
        self._terms = [self._plan(loss, adapters) for loss in self.distillation_losses]
        self.adapters = adapters
        self._teacher_views, self._student_view = self._views()
        self._cache = _OutputCache()
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

    def _check_outputs(self) -> None:
        student_input, student_shape = self.student.inputs[0], tuple(self.student.outputs[0].shape)
        for teacher in self.teachers:
            if is_graph_model(teacher) and not compatible(
                tuple(teacher.inputs[0].shape), tuple(student_input.shape)
            ):
                raise ValueError(
                    f"Teacher {teacher.name!r} takes inputs of shape {teacher.inputs[0].shape}, "
                    f"student {self.student.name!r} {student_input.shape}; both see the same data."
                )
            shape = output_shape(teacher, student_input)
            if not compatible(shape, student_shape):
                raise ValueError(
                    f"Teacher {teacher.name!r} outputs shape {shape} and student "
                    f"{self.student.name!r} {student_shape}; distillation compares them element "
                    "by element, so they must match (same classes in the same order)."
                )
            if isinstance(teacher, keras.Model):
                for loss in self.distillation_losses:
                    if not _is_feature_loss(loss):
                        loss.validate_model_compatibility(teacher, self.student)

    def _plan(self, loss, adapters: list) -> list[_Pair]:
        """The comparisons `loss` makes: one per teacher on the outputs, or one hint."""
        if not _is_feature_loss(loss):
            return [_Pair(i, None, None, w) for i, w in enumerate(self.teacher_weights)]
        index = loss.teacher_index if isinstance(loss, HintDistillation) else 0
        if index >= len(self.teachers):
            raise ValueError(
                f"A hint names teacher_index={index}, but there are {len(self.teachers)} teachers."
            )
        teacher = self.teachers[index]
        if not isinstance(teacher, keras.Model):
            raise ValueError(
                f"Hints need a Keras teacher; teacher {index} ({teacher.name!r}) is a .tflite "
                "model or a callable, whose intermediate layers are out of reach."
            )
        if loss.teacher_layer_name is None or loss.student_layer_name is None:
            raise ValueError(
                "A feature loss needs both layer names (or neither, for the final outputs). "
                f"Received: teacher_layer_name={loss.teacher_layer_name!r}, "
                f"student_layer_name={loss.student_layer_name!r}"
            )
        t_layer = find_layer(teacher, loss.teacher_layer_name, "teacher")
        s_layer = find_layer(self.student, loss.student_layer_name, "student")
        t_shape, s_shape = tuple(t_layer.output.shape), tuple(s_layer.output.shape)
        where = f"Hint {s_layer.name!r} -> {t_layer.name!r}"
        if len(t_shape) != len(s_shape) or not compatible(t_shape[1:-1], s_shape[1:-1]):
            raise ValueError(
                f"{where}: feature shapes {s_shape} (student) and {t_shape} (teacher) differ "
                "beyond the last (width) axis; pick layers of the same spatial size."
            )
        mode = loss.adapter if isinstance(loss, HintDistillation) else "never"
        adapter = None
        if mode == "always" or (mode == "auto" and s_shape[-1] != t_shape[-1]):
            if len(s_shape) not in ADAPTERS:
                raise ValueError(f"{where}: no adapter for features of rank {len(s_shape)}.")
            kind = ADAPTERS[len(s_shape)]
            name = f"adapter_{s_layer.name}_to_{t_layer.name}"
            args = (t_shape[-1],) if kind is keras.layers.Dense else (t_shape[-1], 1)
            adapter = kind(*args, name=name)
            adapter.build(s_shape)
            adapters.append(adapter)
        elif s_shape[-1] != t_shape[-1]:
            raise ValueError(
                f"{where}: widths differ (student {s_shape[-1]}, teacher {t_shape[-1]}); use "
                "HintDistillation(..., adapter='auto') for a learned adapter."
            )
        return [_Pair(index, t_layer.name, s_layer.name, 1.0, adapter)]

    def _views(self) -> tuple[list[_View], _View | None]:
        """Per teacher, the model giving its output and hint features; the same for the student."""
        features: dict[int, list[str]] = {}
        student_layers: list[str] = []
        for pair in (pair for pairs in self._terms for pair in pairs):
            if pair.teacher_layer is not None:
                names = features.setdefault(pair.teacher, [])
                if pair.teacher_layer not in names:
                    names.append(pair.teacher_layer)
                if pair.student_layer not in student_layers:
                    student_layers.append(pair.student_layer)
        views = []
        for i, teacher in enumerate(self.teachers):
            names = features.get(i, [])
            model = teacher
            if names:
                outputs = [teacher.outputs[0], *(teacher.get_layer(n).output for n in names)]
                model = keras.Model(teacher.inputs, outputs, name=f"{teacher.name}_hints")
            views.append(_View([_key(i, n) for n in (None, *names)], model))
        student_view = None
        if student_layers:
            outputs = [self.student.outputs[0],
                       *(self.student.get_layer(n).output for n in student_layers)]  # fmt: skip
            student_view = _View(
                [None, *student_layers],
                keras.Model(self.student.inputs, outputs, name=f"{self.student.name}_hints"),
            )
        return views, student_view

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
        inputs, _ = _unpack(inputs)
        return self.student(inputs, training=training)

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`; with `cache_teacher_outputs`, teachers run once per array first."""
        if self.cache_teacher_outputs:
            x = self._with_teacher_outputs(x, "x")
            validation = kwargs.get("validation_data")
            if isinstance(validation, (tuple, list)) and validation:
                kwargs["validation_data"] = (
                    self._with_teacher_outputs(validation[0], "validation_data"),
                    *validation[1:],
                )
        return super().fit(x, y, **kwargs)

    def teacher_outputs(self, x: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Every teacher's output (key `"i"`) and hint features (`"i:layer"`) for the array `x`.

        Cached per sample while the teachers' weights stay the same: a
        reshuffled copy, or a subset, of data seen before costs no teacher pass.
        """
        return self._cache.lookup(
            x, teachers_digest(self.teachers), lambda rows: self._run_teachers(rows, batch_size)
        )

    def _run_teachers(self, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
        outputs = {}
        for teacher, view in zip(self.teachers, self._teacher_views):
            if isinstance(teacher, ExternalTeacher):
                values = teacher.predict(x, batch_size)
            else:
                values = view.model.predict(x, batch_size=batch_size, verbose=0)
            outputs.update(zip(view.keys, values if isinstance(values, list) else [values]))
        return outputs

    def _with_teacher_outputs(self, x, argument: str) -> dict:
        if isinstance(x, dict) and CACHED in x:
            return x
        if not isinstance(x, (np.ndarray, tf.Tensor)):
            raise ValueError(
                f"cache_teacher_outputs=True needs `{argument}` as one array of inputs; datasets "
                "and generators may change from epoch to epoch. Pass arrays or set "
                f"cache_teacher_outputs=False. Received: type {type(x).__name__}"
            )
        x = np.asarray(x)
        return {INPUTS: x, CACHED: self.teacher_outputs(x)}

    def _live_teacher_outputs(self, inputs) -> dict:
        outputs = {}
        for view in self._teacher_views:
            values = view.model(inputs, training=False)
            outputs.update(zip(view.keys, values if isinstance(values, list) else [values]))
        return outputs

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
            return self._label_loss(y, y_pred, sample_weight=sample_weight)
        return keras.ops.mean(self._label_loss(y, y_pred))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        inputs, cached = _unpack(x)
        teacher = cached if cached is not None else self._live_teacher_outputs(inputs)
        if self._student_view is not None:  # one pass gives the output and the hint features
            student = dict(zip(self._student_view.keys,
                               self._student_view.model(inputs, training=training)))  # fmt: skip
        else:
            student = {None: self(inputs, training=training) if y_pred is None else y_pred}
        step = self.optimizer.iterations if self.compiled else 0
        label_loss = self._label_term(y, student[None], sample_weight)
        distillation = 0.0
        for loss, weight, pairs in zip(
            self.distillation_losses, self.distillation_loss_weights, self._terms
        ):
            term = 0.0
            for pair in pairs:
                features = student[pair.student_layer]
                if pair.adapter is not None:
                    features = pair.adapter(features)
                value = loss.compute_loss(teacher[pair.teacher_key], features, step=step)
                term = term + pair.weight * value
            distillation = distillation + value_at(weight, step) * term
        total = value_at(self.alpha, step) * label_loss + distillation
        for regularization in self.student.losses:
            total = total + regularization
        self.student_loss_tracker.update_state(label_loss)
        self.distillation_loss_tracker.update_state(distillation)
        return total

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
            ],  # fmt: skip
            "alpha": serialize_scalar(self.alpha),
            "teacher_weights": list(self.teacher_weights),
            "cache_teacher_outputs": self.cache_teacher_outputs,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        teachers = config.pop("teacher")
        teachers = [keras.saving.deserialize_keras_object(t)
                    for t in (teachers if isinstance(teachers, list) else [teachers])]  # fmt: skip
        for teacher in teachers:
            teacher.trainable = False  # saved frozen: no second warning
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        config["distillation_losses"] = [
            keras.saving.deserialize_keras_object(loss) for loss in config["distillation_losses"]
        ]
        return cls(teachers if len(teachers) > 1 else teachers[0], **config)


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


def _teacher_weights(weights, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    weights = list(weights)
    if len(weights) != count or any(
        isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights
    ):
        raise ValueError(
            f"`teacher_weights` must be {count} numbers >= 0, one per teacher. "
            f"Received: teacher_weights={weights!r}"
        )
    if sum(weights) == 0:
        raise ValueError(
            f"`teacher_weights` are all zero, so no teacher would teach. "
            f"Received: teacher_weights={weights!r}"
        )
    return [float(w) / sum(weights) for w in weights]


def _losses(losses) -> list:
    if losses is None:
        return [SoftTargetDistillation()]
    losses = list(losses) if isinstance(losses, (list, tuple)) else [losses]
    if not losses:
        raise ValueError("`distillation_losses` is empty; give at least one (or leave it None).")
    for loss in losses:
        if not isinstance(loss, keras.distillation.DistillationLoss):
            raise TypeError(
                "Each distillation loss must be a keras.distillation.DistillationLoss "
                f"(e.g. tfcompress.distillation.SoftTargetDistillation). Received: {loss!r}"
            )
    return losses


def _is_feature_loss(loss) -> bool:
    """A feature loss naming layers (Keras' FeatureDistillation without names compares outputs)."""
    return isinstance(loss, keras.distillation.FeatureDistillation) and (
        loss.teacher_layer_name is not None or loss.student_layer_name is not None
    )
