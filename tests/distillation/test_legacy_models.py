"""Legacy `.h5` models, whose `outputs` is a one-element list in Keras 3, as teacher and student."""

import keras
import numpy as np

from tfcompress.distillation import (
    Distiller,
    HintDistillation,
    SoftTargetDistillation,
    make_student,
)


def legacy_model(path, units: int) -> keras.Model:
    """A functional model saved as `.h5` with its output in a list, as Keras 2 files have it."""
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Dense(units, activation="relu", name="fc")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, [keras.layers.Dense(10, name="logits")(hidden)]).save(path)
    model = keras.saving.load_model(path, compile=False)
    assert isinstance(model.outputs, list) and len(model.outputs) == 1
    return model


def test_one_element_output_lists_are_one_output(tmp_path, digits, reload):
    x, y = digits.x_train[:128], digits.y_train[:128]
    teacher = legacy_model(tmp_path / "teacher.h5", 32)
    teacher.trainable = False
    students = [make_student(teacher, width=0.5), legacy_model(tmp_path / "student.h5", 8)]
    losses = [SoftTargetDistillation(), HintDistillation("fc", "fc", adapter="auto")]
    for student, cache in zip(students, (False, True)):
        distiller = Distiller(teacher, student, losses, cache_teacher_outputs=cache)
        distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = distiller.fit(x, y, batch_size=64, epochs=1, verbose=0).history
        assert np.isfinite(history["distillation_loss"][0])
        assert distiller.predict(x[:4], verbose=0).shape == (4, 10)
    np.testing.assert_allclose(
        reload(distiller).predict(x[:4], verbose=0), distiller.predict(x[:4], verbose=0)
    )
