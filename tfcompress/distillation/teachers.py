"""Teachers for the `Distiller`: resolving, freezing, finding layers, digests for caching."""

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
