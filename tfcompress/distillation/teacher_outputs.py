"""`TeacherOutputs`: the teacher tensors the losses compare with, live or cached per sample.

Cached outputs travel with the inputs through `fit` as `{INPUTS: x, CACHED: {...}}`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import tensorflow as tf

from tfcompress.distillation.external_teacher import ExternalTeacher
from tfcompress.distillation.loss_terms import feature_view, output_key
from tfcompress.distillation.probabilities import as_logits
from tfcompress.distillation.teachers import Teacher, teachers_digest

INPUTS, CACHED = "inputs", "teacher_outputs"


def unpack_inputs(x) -> tuple:
    """`(inputs, cached teacher outputs or None)` from what `fit` hands a training step."""
    if isinstance(x, dict) and CACHED in x:
        return x[INPUTS], x[CACHED]
    return x, None


class TeacherOutputs:
    """Every teacher's output (key `"i"`) and hint features (`"i:layer"`).

    Called on a batch inside a training step, the teachers run in inference
    mode. `predict` runs them on a whole array instead, and keeps the results
    by sample: rows seen before, in any order or subset, are not recomputed,
    and everything is forgotten when the teachers' weights change.

    The output of a teacher that gives probabilities is replaced by its
    logarithm (logits of the same distribution), live and cached alike.

    Args:
        teachers: The teachers, Keras models or `ExternalTeacher`s.
        hint_layers: Per teacher index, the names of the layers hints read.
        probability_teachers: The indices of the teachers whose outputs are probabilities.

    Example:
        >>> from tfcompress.distillation.teacher_outputs import TeacherOutputs
        >>> teacher = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> outputs = TeacherOutputs([teacher], {})
        >>> outputs.predict(np.ones((4, 3), "float32"))["0"].shape
        (4, 2)
    """

    def __init__(
        self,
        teachers: list[Teacher],
        hint_layers: dict[int, list[str]],
        probability_teachers: frozenset[int] = frozenset(),
    ):
        self.teachers = teachers
        self._probabilities = [output_key(i, None) for i in sorted(probability_teachers)]
        self._views = []
        for i, teacher in enumerate(teachers):
            names = hint_layers.get(i, [])
            keys = [output_key(i, n) for n in (None, *names)]
            self._views.append(feature_view(teacher, names, keys))
        self._digest = None
        self._rows: dict[bytes, int] = {}
        self._outputs: dict[str, np.ndarray] = {}

    def __call__(self, inputs) -> dict:
        outputs = {}
        for view in self._views:
            outputs.update(view(inputs, training=False))
        return self._as_logits(outputs)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """The outputs for each row of the array `x`; the teachers run on new rows only."""
        digest = teachers_digest(self.teachers)
        if digest != self._digest:
            self._digest, self._rows, self._outputs = digest, {}, {}
        flat = np.ascontiguousarray(x).reshape(len(x), -1)
        keys = [hashlib.blake2b(row.data, digest_size=16).digest() for row in flat]
        new = {}
        for i, key in enumerate(keys):
            if key not in self._rows and key not in new:
                new[key] = i
        if new:
            computed = self._run(x[list(new.values())], batch_size)
            start = len(self._rows)
            self._rows.update((key, start + j) for j, key in enumerate(new))
            self._outputs = {
                k: np.concatenate([self._outputs[k], v]) if self._outputs else v
                for k, v in computed.items()
            }
        positions = np.fromiter((self._rows[key] for key in keys), dtype=np.int64, count=len(keys))
        return {k: v[positions] for k, v in self._outputs.items()}

    def attach(self, x, argument: str) -> dict:
        """`{INPUTS: x, CACHED: predict(x)}` for `fit`; `x` must be one array.

        Raises:
            ValueError: `x` is a dataset or generator (it may change between epochs).
        """
        if isinstance(x, dict) and CACHED in x:
            return x
        if not isinstance(x, (np.ndarray, tf.Tensor)):
            raise ValueError(
                f"cache_teacher_outputs=True needs `{argument}` as one array of inputs; datasets "
                "and generators may change from epoch to epoch. Pass arrays or set "
                f"cache_teacher_outputs=False. Received: type {type(x).__name__}"
            )
        x = np.asarray(x)
        return {INPUTS: x, CACHED: self.predict(x)}

    def _run(self, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
        outputs = {}
        for teacher, view in zip(self.teachers, self._views):
            if isinstance(teacher, ExternalTeacher):
                values = teacher.predict(x, batch_size)
            else:
                values = view.model.predict(x, batch_size=batch_size, verbose=0)
            outputs.update(zip(view.keys, values if isinstance(values, list) else [values]))
        return self._as_logits(outputs)

    def _as_logits(self, outputs: dict) -> dict:
        for key in self._probabilities:
            outputs[key] = as_logits(outputs[key])
        return outputs
