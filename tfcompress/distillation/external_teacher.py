"""`ExternalTeacher`: a `.tflite` file or any Python callable, used as a teacher layer."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tfcompress.export import TFLiteModel

TFLiteSource = bytes | str | os.PathLike | TFLiteModel


@keras.saving.register_keras_serializable(package="tfcompress")
class ExternalTeacher(keras.layers.Layer):
    """Runs a teacher that is not a Keras model: a `.tflite` model or a callable.

    Inside a training step it runs through `tf.numpy_function` (so the
    training step cannot be XLA-compiled; `Distiller.compile` turns
    `jit_compile` off). With `Distiller(cache_teacher_outputs=True)` its
    outputs are computed once, before training, instead. The teacher is
    called once at construction on a zero sample to learn its output shape.

    A `.tflite` teacher is saved inside the `.keras` file (its bytes, base64 in
    the config); a callable cannot be saved.

    Args:
        teacher: `.tflite` bytes, a path to a `.tflite` file, a `TFLiteModel`,
            or a callable mapping a float32 batch (numpy) to an output batch.
        input_shape: Shape of one input sample; needed for a callable, checked
            against a `.tflite` model's.
        num_threads: Interpreter threads of a `.tflite` teacher.
        **kwargs: Base layer arguments.

    Example:
        >>> from tfcompress.distillation import ExternalTeacher
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_train[:64], data.y_train[:64]
        >>> keras_teacher = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
        >>> content = tfcompress.export_tflite(
        ...     keras_teacher, "teacher_int8.tflite", mode="int8", representative_data=x)
        >>> teacher = ExternalTeacher("teacher_int8.tflite")
        >>> teacher.sample_output_shape
        (10,)
        >>> student = tfcompress.make_student(keras_teacher, width=0.25)
        >>> distiller = tfcompress.Distiller(teacher, student)  # or pass the path directly
        >>> distiller.compile(
        ...     "adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = distiller.fit(x, y, epochs=1, verbose=0)
        >>> history.history["loss"][0] > 0
        True
    """

    def __init__(
        self,
        teacher: TFLiteSource | Callable,
        input_shape: tuple[int, ...] | None = None,
        num_threads: int = 1,
        **kwargs,
    ):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if isinstance(teacher, (str, bytes, bytearray, os.PathLike)):
            teacher = TFLiteModel(teacher, num_threads=num_threads)
        if isinstance(teacher, TFLiteModel):
            self.content = teacher.content
            runner_shape = teacher.input_shape
            if input_shape is not None and not _same_shape(runner_shape, input_shape):
                raise ValueError(
                    f"The .tflite teacher takes samples of shape {runner_shape}, the student "
                    f"{tuple(input_shape)}. Received: input_shape={tuple(input_shape)}"
                )
            input_shape = runner_shape
            self.function = lambda x: teacher.predict(x, batch_size=max(1, len(x)))
        elif callable(teacher):
            if input_shape is None:
                raise ValueError(
                    "A callable teacher needs `input_shape` (one sample's shape) to learn its "
                    "output shape. Received: input_shape=None"
                )
            self.content, self.function = None, teacher
        else:
            raise TypeError(
                "`teacher` must be .tflite bytes, a path to a .tflite file, a TFLiteModel or a "
                f"callable. Received: type {type(teacher).__name__}"
            )
        self.num_threads = num_threads
        self.sample_input_shape = tuple(input_shape)
        probe = np.zeros((1, *(d or 1 for d in self.sample_input_shape)), "float32")
        self.sample_output_shape = tuple(self._run(probe).shape[1:])

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.function(np.asarray(x, "float32")), dtype="float32")

    def call(self, inputs):
        outputs = tf.numpy_function(self._run, [inputs], tf.float32, stateful=True)
        outputs.set_shape((inputs.shape[0], *self.sample_output_shape))
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.sample_output_shape)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Outputs for every sample of `x` (numpy), `batch_size` at a time."""
        batches = range(0, len(x), batch_size)
        return np.concatenate([self._run(x[i : i + batch_size]) for i in batches])

    def get_config(self) -> dict:
        if self.content is None:
            raise ValueError(
                f"Teacher {self.name!r} is a Python callable, which cannot be saved. Save "
                "`distiller.student`, or give the teacher as a Keras model or a .tflite file."
            )
        return {
            **super().get_config(),
            "teacher": base64.b64encode(self.content).decode("ascii"),
            "input_shape": list(self.sample_input_shape),
            "num_threads": self.num_threads,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["teacher"] = base64.b64decode(config["teacher"])
        config.pop("trainable", None)
        return cls(**config)


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))
