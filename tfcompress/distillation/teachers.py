"""Teachers for the `Distiller`: resolving, checking, weighting, freezing, finding layers,
digests for caching."""

from __future__ import annotations

import hashlib
import os
import warnings

import keras
import numpy as np

from tfcompress.distillation.external_teacher import ExternalTeacher
from tfcompress.export import TFLiteModel
from tfcompress.utils.surgery import is_graph_model

Teacher = keras.Model | ExternalTeacher


def as_teacher(teacher, input_shape: tuple) -> Teacher:
    """A Keras model as is; a `.tflite` (bytes, path, TFLiteModel) or callable wrapped."""
    if isinstance(teacher, (keras.Model, ExternalTeacher)):
        return teacher
    if isinstance(teacher, keras.layers.Layer):
        raise TypeError(
            f"A teacher must be a keras.Model, not a bare layer ({teacher.name!r}); "
            "wrap it in a model."
        )
    if isinstance(teacher, (str, bytes, bytearray, os.PathLike, TFLiteModel)) or callable(teacher):
        return ExternalTeacher(teacher, input_shape=input_shape)
    raise TypeError(
        "A teacher must be a keras.Model, .tflite bytes, a path to a .tflite file, a "
        f"TFLiteModel or a callable. Received: type {type(teacher).__name__}"
    )


def freeze(teachers: list[Teacher]) -> None:
    """Makes trainable Keras teachers non-trainable, with one warning naming them."""
    thawed = [t for t in teachers if isinstance(t, keras.Model) and t.trainable]
    for teacher in thawed:
        teacher.trainable = False
    if thawed:
        names = ", ".join(repr(t.name) for t in thawed)
        said = f"Teacher {names} was" if len(thawed) == 1 else f"Teachers {names} were"
        warnings.warn(
            f"{said} trainable; the Distiller froze it (`trainable = False`) so that only the "
            "student learns.",
            stacklevel=3,
        )


def output_shape(teacher: Teacher, student_input) -> tuple:
    """A teacher's output shape (batch included) on the student's symbolic input."""
    if isinstance(teacher, ExternalTeacher):
        return (None, *teacher.sample_output_shape)
    spec = teacher.compute_output_spec(student_input)
    if isinstance(spec, (list, tuple)) and len(spec) == 1:  # e.g. a legacy .h5 model
        spec = spec[0]
    if not isinstance(spec, keras.KerasTensor):
        raise ValueError(
            f"Teacher {teacher.name!r} has several outputs; the Distiller needs one output "
            "tensor (the logits) per model."
        )
    return tuple(spec.shape)


def compatible(a: tuple, b: tuple) -> bool:
    """Same rank and the same size on every axis both know."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def find_layer(model: keras.Model, name: str, role: str) -> keras.layers.Layer:
    """The layer called `name`, or the pruning/QAT wrapper around a layer called `name`.

    Raises:
        ValueError: No such layer; the message lists the model's layer names.
    """
    if not is_graph_model(model):
        raise ValueError(
            f"Hint distillation needs a Sequential or functional {role} model; "
            f"{model.name!r} has no layer graph."
        )
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, keras.layers.Wrapper) else None
        if layer.name == name or (inner is not None and inner.name == name):
            return layer
    names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    raise ValueError(f"The {role} model {model.name!r} has no layer {name!r}. Its layers: {names}")


def teachers_digest(teachers: list[Teacher]) -> str:
    """A digest of the teachers' weights (or `.tflite` bytes); a callable is assumed fixed."""
    digest = hashlib.blake2b(digest_size=16)
    for teacher in teachers:
        if isinstance(teacher, ExternalTeacher):
            digest.update(teacher.content or str(id(teacher.function)).encode())
        else:
            for weight in teacher.weights:
                digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).data)
    return digest.hexdigest()


def normalized_teacher_weights(weights: list[float] | None, count: int) -> list[float]:
    """The weight of each of `count` teachers, normalised to sum 1 (None: equal).

    Raises:
        ValueError: Not `count` numbers >= 0, or all zero.
    """
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


def check_teacher(teacher: Teacher, student: keras.Model) -> None:
    """Raises unless `teacher` takes the student's inputs and gives its output shape."""
    student_input, student_shape = student.inputs[0], tuple(student.outputs[0].shape)
    if is_graph_model(teacher) and not compatible(
        tuple(teacher.inputs[0].shape), tuple(student_input.shape)
    ):
        raise ValueError(
            f"Teacher {teacher.name!r} takes inputs of shape {teacher.inputs[0].shape}, "
            f"student {student.name!r} {student_input.shape}; both see the same data."
        )
    shape = output_shape(teacher, student_input)
    if not compatible(shape, student_shape):
        raise ValueError(
            f"Teacher {teacher.name!r} outputs shape {shape} and student "
            f"{student.name!r} {student_shape}; distillation compares them element "
            "by element, so they must match (same classes in the same order)."
        )
