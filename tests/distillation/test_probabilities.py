"""Teachers and students that output probabilities are distilled through their logarithms."""

import warnings

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.distillation import Distiller, ExternalTeacher
from tfcompress.distillation.probabilities import ends_in_softmax, look_like_probabilities


def with_softmax(model: keras.Model, name: str) -> keras.Model:
    return keras.Model(model.inputs, keras.layers.Softmax()(model.outputs[0]), name=name)


def soft_loss(teacher, student, x, y_pred) -> float:
    distiller = Distiller(teacher, student, alpha=0.0)
    return float(distiller.compute_loss(x, None, y_pred, training=False))


def test_a_softmax_teacher_gives_the_soft_loss_of_its_logits(teacher, student, digits):
    x = digits.x_test[:64]
    expected = soft_loss(teacher, student, x, student(x))
    ops_softmax = keras.Model(teacher.inputs, keras.ops.softmax(teacher.outputs[0]), name="ops")
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(teacher(x)))
    external = ExternalTeacher(lambda b: keras.ops.softmax(teacher(b)), input_shape=(8, 8, 1))
    for source in (with_softmax(teacher, "layer"), ops_softmax, external):
        with pytest.warns(UserWarning, match=rf"Teacher '{source.name}' outputs probabilities"):
            distiller = Distiller(source, student, alpha=0.0, cache_teacher_outputs=True)
        value = float(distiller.compute_loss(x, None, student(x), training=False))
        assert value == pytest.approx(expected, rel=1e-4), source.name
        cached = distiller.teacher_outputs(x)["0"]  # the cache holds log-probabilities too
        np.testing.assert_allclose(cached, np.log(probabilities), atol=1e-4)


def test_a_softmax_student_gets_the_losses_of_its_logits(teacher, student, digits):
    x, y = digits.x_test[:64], digits.y_test[:64]
    totals = []
    for model, from_logits in ((student, True), (with_softmax(student, "soft_student"), False)):
        distiller = Distiller(teacher, model, alpha=0.5)
        distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits))
        totals.append(float(distiller.compute_loss(x, y, model(x), training=False)))
    assert totals[1] == pytest.approx(totals[0], rel=1e-4)


def test_logits_are_left_alone(teacher, student, digits):
    relu_head = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "relu")]
    )
    relu_head.trainable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note on logits, however they look
        for model in (teacher, relu_head):
            Distiller(model, student, alpha=0.0)
    assert not ends_in_softmax(teacher)
    assert ends_in_softmax(with_softmax(teacher, "soft"))
    pruned = tc.prune_low_magnitude(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    )
    assert ends_in_softmax(pruned)  # through the wrapper
    assert look_like_probabilities(np.array([[0.2, 0.8], [0.5, 0.5]]))
    assert not look_like_probabilities(np.array([[0.2, 0.8], [0.5, 0.6]]))
    assert not look_like_probabilities(np.array([[1.0], [1.0]]))  # one class: no distribution
    assert not look_like_probabilities(np.array([[-0.5, 1.5]]))


@pytest.mark.slow
def test_a_softmax_student_does_not_collapse(teacher, cnn, digits):
    """Taken as logits, a student's probabilities are pushed to saturate: classes vanish."""

    def accuracy(model_teacher, softmax_student: bool) -> tuple[float, int]:
        keras.utils.set_random_seed(1)
        model = cnn(8, 16, name="student")
        if softmax_student:
            model = with_softmax(model, "soft_student")
        distiller = Distiller(model_teacher, model, alpha=0.0)  # only the teacher teaches
        distiller.compile(keras.optimizers.Adam(1e-2))
        distiller.fit(digits.x_train, epochs=1, batch_size=64, shuffle=False, verbose=0)
        predicted = model.predict(digits.x_test, verbose=0).argmax(-1)
        return float(np.mean(predicted == digits.y_test)), len(np.unique(predicted))

    control, control_classes = accuracy(teacher, False)
    assert control > 0.7 and control_classes == 10
    for model_teacher in (teacher, with_softmax(teacher, "soft_teacher")):
        value, classes = accuracy(model_teacher, True)
        assert value >= control - 0.02 and classes == 10, model_teacher.name
