"""The `Distiller`'s loss, assembled: which tensors each distillation loss compares, and the sum.

A loss on the outputs compares every teacher's output with the student's,
weighted by the teacher's weight; a hint (a feature loss naming layers)
compares one teacher layer with one student layer, through a learned adapter
when asked or when the widths differ. Teacher tensors are found by key: `"i"`
for teacher `i`'s output, `"i:layer"` for a hint feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from tfcompress.distillation.hint_distillation import HintDistillation
from tfcompress.distillation.schedules import Scalar, value_at
from tfcompress.distillation.soft_target_distillation import SoftTargetDistillation
from tfcompress.distillation.teachers import Teacher, compatible, find_layer

# The adapter of a hint, by the rank of the student's features.
ADAPTERS = {
    2: keras.layers.Dense,
    3: keras.layers.Conv1D,
    4: keras.layers.Conv2D,
    5: keras.layers.Conv3D,
}


def output_key(teacher: int, layer: str | None) -> str:
    """Where a teacher tensor is in the teacher outputs: `"i"` or `"i:layer"`."""
    return str(teacher) if layer is None else f"{teacher}:{layer}"


@dataclass
class Comparison:
    """One comparison made by a loss: a teacher's output or layer with the student's."""

    teacher: int  # the teacher's index
    teacher_layer: str | None  # None: the teacher's output
    student_layer: str | None  # None: the student's output
    weight: float  # the teacher's weight (1 for a hint)
    adapter: keras.layers.Layer | None = None

    @property
    def teacher_key(self) -> str:
        return output_key(self.teacher, self.teacher_layer)


@dataclass
class FeatureView:
    """A model giving a model's output and some of its layers' outputs, each under a key.

    A dataclass, not a layer, so that Keras does not track (and save) the view.
    """

    keys: list
    model: keras.layers.Layer

    def __call__(self, inputs, training=None) -> dict:
        values = self.model(inputs, training=training)
        return dict(zip(self.keys, values if isinstance(values, list) else [values]))


def feature_view(model: keras.layers.Layer, layer_names: list[str], keys: list) -> FeatureView:
    """`model` itself without `layer_names`, otherwise a model returning its output then theirs."""
    if layer_names:
        outputs = [model.outputs[0], *(model.get_layer(n).output for n in layer_names)]
        model = keras.Model(model.inputs, outputs, name=f"{model.name}_hints")
    return FeatureView(keys, model)


def is_feature_loss(loss) -> bool:
    """A feature loss naming layers (Keras' FeatureDistillation without names compares outputs)."""
    return isinstance(loss, keras.distillation.FeatureDistillation) and (
        loss.teacher_layer_name is not None or loss.student_layer_name is not None
    )


def check_losses(losses) -> list:
    """The losses as a list (None: `SoftTargetDistillation()`), each a `DistillationLoss`."""
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


def check_compatibility(losses: list, teacher: Teacher, student: keras.Model) -> None:
    """Keras' own check of each output loss against a Keras teacher and the student."""
    if isinstance(teacher, keras.Model):
        for loss in losses:
            if not is_feature_loss(loss):
                loss.validate_model_compatibility(teacher, student)


def comparisons(
    loss, teachers: list[Teacher], teacher_weights: list[float], student: keras.Model
) -> list[Comparison]:
    """The comparisons `loss` makes: one per teacher on the outputs, or one hint.

    A hint's adapter, when it needs one, is created and built here.
    """
    if not is_feature_loss(loss):
        return [Comparison(i, None, None, w) for i, w in enumerate(teacher_weights)]
    index = loss.teacher_index if isinstance(loss, HintDistillation) else 0
    if index >= len(teachers):
        raise ValueError(
            f"A hint names teacher_index={index}, but there are {len(teachers)} teachers."
        )
    teacher = teachers[index]
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
    s_layer = find_layer(student, loss.student_layer_name, "student")
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
    elif s_shape[-1] != t_shape[-1]:
        raise ValueError(
            f"{where}: widths differ (student {s_shape[-1]}, teacher {t_shape[-1]}); use "
            "HintDistillation(..., adapter='auto') for a learned adapter."
        )
    return [Comparison(index, t_layer.name, s_layer.name, 1.0, adapter)]


def hint_layers(terms: list[list[Comparison]]) -> tuple[dict[int, list[str]], list[str]]:
    """The teacher layers the hints read (by teacher index) and the student layers, in order."""
    teacher_layers: dict[int, list[str]] = {}
    student_layers: list[str] = []
    for pair in (pair for pairs in terms for pair in pairs):
        if pair.teacher_layer is not None:
            names = teacher_layers.setdefault(pair.teacher, [])
            if pair.teacher_layer not in names:
                names.append(pair.teacher_layer)
            if pair.student_layer not in student_layers:
                student_layers.append(pair.student_layer)
    return teacher_layers, student_layers


def distillation_loss(
    losses: list,
    weights: list[Scalar],
    terms: list[list[Comparison]],
    teacher: dict,
    student: dict,
    step,
):
    """`sum_k w_k * sum_pairs v * loss_k(teacher tensor, student tensor)` at training `step`.

    Args:
        losses: The distillation losses.
        weights: One weight (number or schedule) per loss.
        terms: One list of comparisons per loss (`comparisons`).
        teacher: Teacher tensors by key (`output_key`).
        student: Student tensors by layer name (None: the output).
        step: The training step, for schedules.
    """
    total = 0.0
    for loss, weight, pairs in zip(losses, weights, terms):
        term = 0.0
        for pair in pairs:
            features = student[pair.student_layer]
            if pair.adapter is not None:
                features = pair.adapter(features)
            value = loss.compute_loss(teacher[pair.teacher_key], features, step=step)
            term = term + pair.weight * value
        total = total + value_at(weight, step) * term
    return total
